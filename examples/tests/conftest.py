"""The example folders on ``sys.path``, and a coordinator fixture for the end-to-end tests.

The examples are scripts, not packages: their folders go on ``sys.path`` here, as they are when
a script runs (``python examples/digits_numpy/run.py`` puts its own folder first).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent
for folder in (EXAMPLES / "digits_numpy", EXAMPLES / "pytorch"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from example_support import Coordinator, start_coordinator  # noqa: E402


@pytest.fixture
def coordinator_for(tmp_path: Path) -> Iterator[Callable[[str], Coordinator]]:
    """``coordinator_for("configs/examples.toml")``: a running coordinator, killed afterwards."""
    started: list[Coordinator] = []

    def start(config: str) -> Coordinator:
        coordinator = start_coordinator(config, tmp_path)
        started.append(coordinator)
        return coordinator

    yield start
    for coordinator in started:
        coordinator.kill()
