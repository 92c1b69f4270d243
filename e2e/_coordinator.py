"""The real coordinator process, serving the demo page, for the browser tests.

Phases are short, and a phase without enough messages gives up after a few seconds, so a round
that drew no summer is soon replaced by the next. ``stop()`` and ``start()`` again keep the port,
so a page sees the same coordinator go away and come back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
COORDINATOR = Path(sys.executable).parent / "xaynet-coordinator"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL_LENGTH = 650


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config_text(port: int, directory: Path, *, backend: str, key_prefix: str) -> str:
    return f"""\
[api]
bind_address = "127.0.0.1:{port}"

[pet.sum]
probability = 0.35
count = {{ min = 1, max = 50 }}
time = {{ min = 0.5, max = 3 }}

[pet.update]
probability = 1.0
count = {{ min = 3, max = 50 }}
time = {{ min = 1.0, max = 5 }}

[pet.sum2]
count = {{ min = 1, max = 50 }}
time = {{ min = 0.5, max = 5 }}

[model]
length = {MODEL_LENGTH}

[storage]
backend = "{backend}"
url = "{REDIS_URL}"
key_prefix = "{key_prefix}"

[models]
backend = "directory"
directory = "{directory / "models"}"

[web]
enabled = true
root = "{ROOT / "web_participant"}"
node_modules = "{ROOT / "node_modules"}"
wheels = "{ROOT / ".cache" / "web"}"

[log]
level = "info"
"""


class WebCoordinator:
    """``xaynet-coordinator`` with the page, on memory or Redis (keys under a fresh prefix)."""

    def __init__(self, directory: Path, backend: str = "memory") -> None:
        self.directory = directory
        self.backend = backend
        self.port = free_port()
        self.key_prefix = f"xaynet-e2e-{uuid.uuid4().hex[:12]}:"
        self.config = directory / "coordinator.toml"
        self.config.write_text(
            config_text(self.port, directory, backend=backend, key_prefix=self.key_prefix),
            encoding="utf-8",
        )
        self.log_path = directory / "coordinator.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._redis: Any = None
        if backend == "redis":
            redis = pytest.importorskip("redis")
            self._redis = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
            try:
                self._redis.ping()
            except (redis.RedisError, OSError) as exc:
                pytest.fail(f"Redis at {REDIS_URL} is unreachable (set REDIS_URL): {exc}")

    @property
    def url(self) -> str:
        # localhost, not 127.0.0.1: the browser resolves nothing else (--host-resolver-rules)
        return f"http://localhost:{self.port}"

    @property
    def models_dir(self) -> Path:
        return self.directory / "models"

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("XAYNET__")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(COORDINATOR), "--config", str(self.config)],
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"the coordinator exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.fail("the coordinator did not get ready")

    def stop(self) -> None:
        """SIGTERM, as an operator's restart does (SIGKILL if it hangs)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        if self._redis is not None:
            keys = list(self._redis.scan_iter(match=f"{self.key_prefix}*", count=500))
            if keys:
                self._redis.delete(*keys)
            self._redis.close()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10)

    def log(self, tail: int = 60) -> str:
        lines = self.log_path.read_text("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n--- coordinator log ---\n{self.log()}", pytrace=False)
