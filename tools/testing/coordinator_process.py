"""The real ``xaynet-coordinator`` process, for every test suite that needs one.

``conftest.py`` at the repository root puts this folder on ``sys.path``, so the coordinator's
process tests, the SDK and test-drive tests, the examples' tests and the browser tests all
start, stop and read the coordinator the same way. Each suite writes its own config (the
phases a test needs differ); :func:`config_toml` writes the common sections.

Needs httpx (CPython only): import it after ``pytest.importorskip("httpx")`` where a suite
also runs inside Pyodide.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

__all__ = [
    "ROOT",
    "COORDINATOR",
    "REDIS_URL",
    "START_TIMEOUT",
    "CoordinatorProcess",
    "config_toml",
    "web_toml",
    "free_port",
    "redis_client",
    "delete_prefix",
]

ROOT = Path(__file__).resolve().parents[2]
#: the console script of the venv running the tests
COORDINATOR = Path(sys.executable).parent / "xaynet-coordinator"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
#: seconds the process gets to answer ``/readyz``
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_client(*, skip: bool = True) -> Any:
    """A client of the Redis at ``REDIS_URL``; skips the test (or fails it) when unreachable."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        reason = f"Redis at {REDIS_URL} is unreachable (set REDIS_URL): {exc}"
        if skip:
            pytest.skip(reason)
        pytest.fail(reason, pytrace=False)
    return client


def delete_prefix(client: Any, prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN + DEL: the server is shared)."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


def _phase(name: str, values: dict[str, Any]) -> str:
    lines = [f"[pet.{name}]"]
    for key, value in values.items():
        if isinstance(value, tuple):
            lines.append(f"{key} = {{ min = {value[0]}, max = {value[1]} }}")
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines)


def config_toml(
    port: int,
    *,
    models_dir: Path,
    model_length: int,
    sum_phase: dict[str, Any],
    update_phase: dict[str, Any],
    sum2_phase: dict[str, Any],
    backend: str = "memory",
    key_prefix: str = "xaynet-test:",
    api_extra: str = "",
    storage_extra: str = "",
    extra: str = "",
) -> str:
    """A config: ``*_phase`` are ``{"probability": p, "count": (min, max), "time": (min, max)}``;
    ``api_extra`` / ``storage_extra`` are more lines of those sections, ``extra`` more
    sections, all as they are."""
    return f"""\
[api]
bind_address = "127.0.0.1:{port}"
{api_extra}
{_phase("sum", sum_phase)}

{_phase("update", update_phase)}

{_phase("sum2", sum2_phase)}

[model]
length = {model_length}

[storage]
backend = "{backend}"
url = "{REDIS_URL}"
key_prefix = "{key_prefix}"
{storage_extra}
[models]
backend = "directory"
directory = "{models_dir}"

[log]
level = "info"
{extra}"""


def web_toml(wheels: Path) -> str:
    """A ``[web]`` section serving the checkout's page, Pyodide from its ``node_modules`` and
    the wheels in ``wheels``; skips the test when ``npm ci`` has not run."""
    node_modules = ROOT / "node_modules"
    if not (node_modules / "pyodide" / "pyodide.mjs").is_file():
        pytest.skip(f"{node_modules} lacks Pyodide (npm ci)")
    return f"""
[web]
enabled = true
root = "{ROOT / "web_participant"}"
node_modules = "{node_modules}"
wheels = "{wheels}"
"""


class CoordinatorProcess:
    """One ``xaynet-coordinator --config`` process at a time, restartable on the same port."""

    scheme = "http"

    def __init__(
        self,
        config: Path,
        port: int,
        log_path: Path,
        *,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """``env`` adds variables (``XAYNET__...`` overrides) to a copy of the environment
        from which every other ``XAYNET__`` variable is removed; ``cwd`` defaults to the
        config's folder (relative paths in the config are relative to it)."""
        self.config = config
        self.port = port
        self.log_path = log_path
        self.host = host
        self.env = dict(env or {})
        self.cwd = cwd if cwd is not None else config.parent
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _client_options(self) -> dict[str, Any]:
        """httpx options for probing the process (TLS subclasses add certificates)."""
        return {}

    # -- life ------------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until ``/readyz`` says ready."""
        assert not self.running, "already running"
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("XAYNET__")}
        env.update(self.env)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [str(COORDINATOR), "--config", str(self.config)],
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(timeout=2.0, **self._client_options()) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.fail(f"the coordinator exited with status {self.process.returncode}")
                try:
                    response = client.get(f"{self.url}/readyz")
                except httpx.TransportError as exc:
                    last = repr(exc)
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                time.sleep(0.1)
        self.fail(f"/readyz not ready within {timeout} s (last: {last})")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, as an operator's restart does; returns the exit status (negative: a signal).
        Fails the test if the process outlives ``timeout``."""
        if not self.running:
            self.fail("the coordinator is not running")
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            self.fail(f"the coordinator did not exit within {timeout} s of SIGTERM")
            raise  # not reached: fail() raises

    # -- diagnostics -----------------------------------------------------------------------------

    def log(self, tail: int = 60) -> str:
        try:
            lines = self.log_path.read_text("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-tail:])

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n--- coordinator log (end) ---\n{self.log()}", pytrace=False)
