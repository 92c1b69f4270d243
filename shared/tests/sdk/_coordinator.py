"""The real ``xaynet-coordinator`` process for the SDK's integration tests (memory storage).

Import only after ``pytest.importorskip("httpx")``: it needs httpx and the coordinator's console
script next to the running interpreter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from coordinator_process import COORDINATOR, CoordinatorProcess, config_toml, free_port

__all__ = ["Coordinator", "free_port", "write_config", "started"]


def write_config(directory: Path, port: int, *, model_length: int) -> Path:
    """Short phases for a handful of participants; a phase without enough messages times out
    after a few seconds and the coordinator starts the next round."""
    path = directory / "coordinator.toml"
    path.write_text(
        config_toml(
            port,
            models_dir=directory / "models",
            model_length=model_length,
            sum_phase={"probability": 0.3, "count": (1, 10), "time": (0.5, 2)},
            update_phase={"probability": 1.0, "count": (3, 10), "time": (1.0, 2.5)},
            sum2_phase={"count": (1, 10), "time": (0.5, 2)},
        ),
        encoding="utf-8",
    )
    return path


class Coordinator(CoordinatorProcess):
    def start(self, timeout: float = 30.0) -> None:
        if not COORDINATOR.exists():
            pytest.skip(f"the coordinator is not installed ({COORDINATOR})")
        super().start(timeout)

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/state", timeout=5).json()
        return result


def started(tmp: Path, *, model_length: int) -> Coordinator:
    port = free_port()
    coordinator = Coordinator(
        write_config(tmp, port, model_length=model_length), port, tmp / "coordinator.log"
    )
    coordinator.start()
    return coordinator
