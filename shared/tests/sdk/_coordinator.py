"""The real ``xaynet-coordinator`` process for the SDK's integration tests (memory storage).

Import only after ``pytest.importorskip("httpx")``: it needs httpx and the coordinator's console
script next to the running interpreter.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

COORDINATOR = Path(sys.executable).parent / "xaynet-coordinator"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(directory: Path, port: int, *, model_length: int) -> Path:
    """Short phases for a handful of participants; a phase without enough messages times out
    after a few seconds and the coordinator starts the next round."""
    path = directory / "coordinator.toml"
    path.write_text(
        f"""\
[api]
bind_address = "127.0.0.1:{port}"

[pet.sum]
probability = 0.3
count = {{ min = 1, max = 10 }}
time = {{ min = 0.5, max = 2 }}

[pet.update]
probability = 1.0
count = {{ min = 3, max = 10 }}
time = {{ min = 1.0, max = 2.5 }}

[pet.sum2]
count = {{ min = 1, max = 10 }}
time = {{ min = 0.5, max = 2 }}

[model]
length = {model_length}

[storage]
backend = "memory"

[models]
backend = "directory"
directory = "{directory / "models"}"

[log]
level = "info"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Coordinator:
    config: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not COORDINATOR.exists():
            pytest.skip(f"the coordinator is not installed ({COORDINATOR})")
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("XAYNET__")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(COORDINATOR), "--config", str(self.config)],
                cwd=self.config.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
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

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/state", timeout=5).json()
        return result

    def log(self, tail: int = 60) -> str:
        lines = self.log_path.read_text("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n--- coordinator log ---\n{self.log()}", pytrace=False)


def started(tmp: Path, *, model_length: int) -> Coordinator:
    port = free_port()
    coordinator = Coordinator(
        write_config(tmp, port, model_length=model_length), port, tmp / "coordinator.log"
    )
    coordinator.start()
    return coordinator
