"""Runs the examples as a user would: a real coordinator process, then the example's script.

Each wait has a timeout, and a failure shows the script's output and the coordinator's log.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from coordinator_process import CoordinatorProcess, free_port

EXAMPLES = Path(__file__).resolve().parent.parent
ROOT = EXAMPLES.parent
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


Coordinator = CoordinatorProcess


def start_coordinator(config: str, workdir: Path) -> Coordinator:
    """Start ``xaynet-coordinator --config <config>`` (relative to the repository) on a free port.

    Memory storage, :data:`FAST_PHASES`, the config's model length; the process runs in
    ``workdir`` (global models land there). The caller kills it (:meth:`Coordinator.kill`).
    """
    port = free_port()
    env = {
        **FAST_PHASES,
        "XAYNET__API__BIND_ADDRESS": f"127.0.0.1:{port}",
        "XAYNET__STORAGE__BACKEND": "memory",
    }
    coordinator = Coordinator(
        ROOT / config, port, workdir / "coordinator.log", env=env, cwd=workdir
    )
    coordinator.start(START_TIMEOUT)
    return coordinator


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
