"""Runs the examples as a user would: a real coordinator process, then the example's script.

Each wait has a timeout, and a failure shows the script's output and the coordinator's log.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent
ROOT = EXAMPLES.parent
#: the console script of the venv running the tests
COORDINATOR = Path(sys.executable).parent / "xaynet-coordinator"
START_TIMEOUT = 30.0

#: Shorter phases than the shipped configs (whose minimums leave room for slow machines): the
#: participants live in one process on this machine and answer within milliseconds. A round
#: without summers (p_sum 0.2, 10 participants: about one in ten) fails after 2 s, not 5 s.
FAST_PHASES = {
    "XAYNET__PET__SUM__TIME__MIN": "0.5",
    "XAYNET__PET__SUM__TIME__MAX": "2",
    "XAYNET__PET__UPDATE__TIME__MIN": "1",
    "XAYNET__PET__SUM2__TIME__MIN": "0.5",
}

_ROUND_LINE = re.compile(r"^round +(\d+) +test accuracy (\d\.\d+)", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Coordinator:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self, tail: int = 60) -> str:
        lines = self.log_path.read_text("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_coordinator(config: str, workdir: Path) -> Coordinator:
    """Start ``xaynet-coordinator --config <config>`` (relative to the repository) on a free port.

    Memory storage, :data:`FAST_PHASES`, the config's model length; the process runs in
    ``workdir`` (global models land there). The caller kills it (:meth:`Coordinator.stop`).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("XAYNET__")}
    env.update(FAST_PHASES)
    env["XAYNET__API__BIND_ADDRESS"] = f"127.0.0.1:{port}"
    env["XAYNET__STORAGE__BACKEND"] = "memory"
    log_path = workdir / "coordinator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(COORDINATOR), "--config", str(ROOT / config)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    coordinator = Coordinator(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the coordinator exited:\n{coordinator.log()}", pytrace=False)
        try:
            if httpx.get(f"{coordinator.url}/readyz", timeout=2).status_code == 200:
                return coordinator
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    coordinator.stop()
    pytest.fail(f"the coordinator is not ready:\n{coordinator.log()}", pytrace=False)


def run_example(
    script: str, coordinator: Coordinator, args: Sequence[str], timeout: float
) -> list[float]:
    """Run ``examples/<script>`` as a user would; return the printed accuracy of each round."""
    try:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / script), "--url", coordinator.url, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{script} did not finish within {timeout} s\n--- output ---\n{exc.stdout!r}\n"
            f"--- coordinator log ---\n{coordinator.log()}",
            pytrace=False,
        )
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr[-3000:]}"
    if result.returncode != 0:
        pytest.fail(
            f"{script} exited with {result.returncode}\n{output}\n"
            f"--- coordinator log ---\n{coordinator.log()}",
            pytrace=False,
        )
    rounds = [(int(n), float(acc)) for n, acc in _ROUND_LINE.findall(result.stdout)]
    assert [n for n, _ in rounds] == list(range(1, len(rounds) + 1)), output
    return [acc for _, acc in rounds]
