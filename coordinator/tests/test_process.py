"""The real ``xaynet-coordinator`` process, driven through rounds by protocol-core participants.

The crash tests kill the process with SIGKILL in the middle of a phase, start it again with the
same config and check that the round resumes with every message the first process acknowledged:
the global model is the weighted mean of all updates, those sent before the crash included.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import numpy as np
import pytest
from coordinator_process import COORDINATOR, free_port
from process_support import (
    Coordinator,
    RoundDriver,
    delete_prefix,
    reason,
    redis_unreachable,
    write_config,
)

pytestmark = [pytest.mark.numpy, pytest.mark.pynacl]

MODEL_LENGTH = 1000
TOLERANCE = 1e-6

MakeCoordinator = Callable[..., Coordinator]


@pytest.fixture
def make_coordinator(tmp_path: Path) -> Iterator[MakeCoordinator]:
    """Build a coordinator (not started) for a backend and the counts a round will need.

    Redis gets a key prefix of its own, deleted afterwards; the process is killed if a test
    leaves it running.
    """
    if not COORDINATOR.exists():
        pytest.skip(f"no console script at {COORDINATOR}: install xaynet-coordinator")
    made: list[Coordinator] = []
    prefixes: list[str] = []

    def make(*, backend: str, summers: int, updaters: int) -> Coordinator:
        if backend == "redis":
            why = redis_unreachable()
            if why is not None:
                pytest.skip(why)
        prefix = f"xaynet-test-process:{uuid4().hex}:"
        prefixes.append(prefix)
        port = free_port()
        config = write_config(
            tmp_path / "config.toml",
            port=port,
            backend=backend,
            key_prefix=prefix,
            models_dir=tmp_path / "models",
            summers=summers,
            updaters=updaters,
            model_length=MODEL_LENGTH,
        )
        coordinator = Coordinator(config, port, tmp_path / "coordinator.log")
        made.append(coordinator)
        return coordinator

    yield make
    for coordinator in made:
        coordinator.stop()
    if redis_unreachable() is None:
        for prefix in prefixes:
            delete_prefix(prefix)


def check_accepted(coordinator: Coordinator, responses: list[httpx.Response], what: str) -> None:
    last = responses[-1]
    if last.status_code != 202 or last.json()["reason"] != "accepted":
        coordinator.fail(f"{what}: {[reason(r) for r in responses]}")
    for response in responses[:-1]:
        assert reason(response) == "202 chunk_buffered", what


def resumed(driver: RoundDriver, phase: str) -> dict[str, Any]:
    """The state of a restarted coordinator: restored before it reports ready, so no waiting."""
    state = driver.coordinator.state()
    if (state["round_id"], state["phase"]) != (driver.round_id, phase):
        driver.coordinator.fail(f"expected round {driver.round_id} resumed in {phase}: {state}")
    return state


def run_update_phase(driver: RoundDriver, updaters: range) -> None:
    for i in updaters:
        check_accepted(driver.coordinator, driver.send_update(i), f"update {i}")


def run_sum2_phase(driver: RoundDriver, summers: range) -> None:
    for i in summers:
        check_accepted(driver.coordinator, [driver.send_sum2(i)], f"sum2 of summer {i}")


def check_global_model(driver: RoundDriver, models_dir: Path) -> None:
    """The round's global model: the weighted mean of every update, published and stored."""
    c = driver.coordinator
    published = c.wait_model(driver.round_id)
    assert published["round_id"] == driver.round_id
    model_id = driver.model_id
    assert published["model_id"] == model_id
    expected = driver.expected_model()
    got = np.asarray(published["model"])
    assert got.shape == expected.shape
    error = float(np.max(np.abs(got - expected)))
    assert error < TOLERANCE, f"the global model is off by {error}"
    stored = np.frombuffer((models_dir / model_id).read_bytes(), dtype="<f8")
    np.testing.assert_array_equal(stored, got)
    raw = c.client().get("/model", headers={"accept": "application/octet-stream"})
    assert raw.status_code == 200
    np.testing.assert_array_equal(np.frombuffer(raw.content, dtype="<f8"), got)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_full_round(make_coordinator: MakeCoordinator, backend: str, tmp_path: Path) -> None:
    c = make_coordinator(backend=backend, summers=2, updaters=3)
    c.start()
    driver = RoundDriver(c, n_summers=2, n_updaters=3, chunked=frozenset({1}))
    driver.join()
    for i in range(2):
        check_accepted(c, [driver.send_sum(i)], f"sum {i}")
    c.wait_phase(driver.round_id, "update")
    driver.prepare_updates()
    assert len(driver.updaters[1].bodies) > 1, "updater 1 should send a multipart message"
    run_update_phase(driver, range(3))
    c.wait_phase(driver.round_id, "sum2")
    run_sum2_phase(driver, range(2))
    check_global_model(driver, tmp_path / "models")
    # The next round starts by itself, with another round seed.
    state = c.wait_phase(driver.round_id + 1, "sum")
    assert state["global_model"]["model_id"] == driver.model_id


def test_sigkill_during_update_keeps_acknowledged_updates(
    make_coordinator: MakeCoordinator, tmp_path: Path
) -> None:
    c = make_coordinator(backend="redis", summers=2, updaters=6)
    c.start()
    driver = RoundDriver(c, n_summers=2, n_updaters=6, chunked=frozenset({1, 3, 4}))
    driver.join()
    for i in range(2):
        check_accepted(c, [driver.send_sum(i)], f"sum {i}")
    c.wait_phase(driver.round_id, "update")
    driver.prepare_updates()
    assert len(driver.updaters[3].bodies) >= 3, "updater 3 needs several chunks"

    run_update_phase(driver, range(3))
    # Updater 3 is halfway through its chunks when the process dies: not acknowledged.
    partial = driver.send_update(3, slice(0, 2))
    assert [reason(r) for r in partial] == ["202 chunk_buffered"] * 2
    c.kill()

    c.start()
    state = resumed(driver, "update")
    assert state["window"]["accepted"] == 3, f"{state}"
    assert state["updates_aggregated"] == 3, f"{state}"
    # Acknowledged before the crash, so a resend is a duplicate (single body and multipart).
    assert reason(driver.send_update(0)[-1]) == "409 already_submitted"
    resent = driver.send_update(1)
    assert reason(resent[-1]) == "409 already_submitted", [reason(r) for r in resent]
    # The chunks buffered before the crash are gone: updater 3 sends all of them again.
    run_update_phase(driver, range(3, 6))

    c.wait_phase(driver.round_id, "sum2")
    run_sum2_phase(driver, range(2))
    check_global_model(driver, tmp_path / "models")


def test_sigkill_during_sum2_keeps_votes(make_coordinator: MakeCoordinator, tmp_path: Path) -> None:
    c = make_coordinator(backend="redis", summers=3, updaters=3)
    c.start()
    driver = RoundDriver(c, n_summers=3, n_updaters=3)
    driver.join()
    for i in range(3):
        check_accepted(c, [driver.send_sum(i)], f"sum {i}")
    c.wait_phase(driver.round_id, "update")
    driver.prepare_updates()
    run_update_phase(driver, range(3))
    c.wait_phase(driver.round_id, "sum2")
    run_sum2_phase(driver, range(1))
    c.kill()

    c.start()
    state = resumed(driver, "sum2")
    assert state["window"]["accepted"] == 1, f"{state}"
    assert state["updates_aggregated"] == 3, f"{state}"
    assert reason(driver.send_sum2(0)) == "409 already_submitted"
    run_sum2_phase(driver, range(1, 3))
    check_global_model(driver, tmp_path / "models")


def test_sigkill_during_sum_keeps_summers(
    make_coordinator: MakeCoordinator, tmp_path: Path
) -> None:
    c = make_coordinator(backend="redis", summers=2, updaters=3)
    c.start()
    driver = RoundDriver(c, n_summers=2, n_updaters=3)
    driver.join()
    check_accepted(c, [driver.send_sum(0)], "sum 0")
    c.kill()

    c.start()
    state = resumed(driver, "sum")
    assert state["window"]["accepted"] == 1, f"{state}"
    assert reason(driver.send_sum(0)) == "409 already_submitted"
    check_accepted(c, [driver.send_sum(1)], "sum 1")
    c.wait_phase(driver.round_id, "update")
    driver.prepare_updates()  # checks that the sum dict holds both summers
    run_update_phase(driver, range(3))
    c.wait_phase(driver.round_id, "sum2")
    run_sum2_phase(driver, range(2))
    check_global_model(driver, tmp_path / "models")


def test_sigterm_stops_cleanly_and_the_round_resumes(
    make_coordinator: MakeCoordinator, tmp_path: Path
) -> None:
    c = make_coordinator(backend="redis", summers=1, updaters=3)
    c.start()
    driver = RoundDriver(c, n_summers=1, n_updaters=3, chunked=frozenset({2}))
    driver.join()
    check_accepted(c, [driver.send_sum(0)], "sum 0")
    c.wait_phase(driver.round_id, "update")
    driver.prepare_updates()
    run_update_phase(driver, range(1))
    assert c.http is not None
    c.http.get("/healthz")  # an idle keep-alive connection must not hold up the shutdown

    started = time.monotonic()
    status = c.terminate(timeout=10)
    elapsed = time.monotonic() - started
    # uvicorn re-raises SIGTERM after its shutdown (cli.py): killed by it, or 0
    assert status in (0, -signal.SIGTERM), c.log()
    assert elapsed < 5, f"the shutdown took {elapsed:.1f} s"
    assert "Application shutdown complete" in c.log()

    c.start()
    state = resumed(driver, "update")
    assert state["window"]["accepted"] == 1, f"{state}"
    run_update_phase(driver, range(1, 3))
    c.wait_phase(driver.round_id, "sum2")
    run_sum2_phase(driver, range(1))
    check_global_model(driver, tmp_path / "models")
