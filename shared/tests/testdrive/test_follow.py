"""The shutdown guard of test-drive runs: a stuck task is reported, not waited for forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("httpx")

from xaynet.testdrive import follow


def test_a_stuck_task_is_logged_with_its_stack_and_the_shutdown_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(follow, "SHUTDOWN_SECONDS", 0.2)

    async def stuck_somewhere_recognisable() -> None:
        await asyncio.Event().wait()

    async def quick() -> None:
        raise RuntimeError("ended badly, which is fine at shutdown")

    async def scenario() -> None:
        stuck = asyncio.ensure_future(stuck_somewhere_recognisable())
        await follow.bounded_gather("the test's tasks", [stuck, quick()])
        assert not stuck.done()
        stuck.cancel()

    with caplog.at_level(logging.ERROR, logger="xaynet.testdrive"):
        asyncio.run(scenario())
    (record,) = caplog.records
    assert "1 of the test's tasks still running" in record.getMessage()
    assert "stuck_somewhere_recognisable" in record.getMessage()


def test_tasks_that_end_in_time_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        await follow.bounded_gather("quick ones", [asyncio.sleep(0), asyncio.sleep(0.01)])
        await follow.bounded_gather("none", [])

    with caplog.at_level(logging.ERROR, logger="xaynet.testdrive"):
        asyncio.run(scenario())
    assert caplog.records == []


class _State:
    def __init__(self, data: dict[str, object]) -> None:
        self.data = data

    def json(self) -> dict[str, object]:
        return self.data


class _Client:
    """``GET /state`` answering the given states in turn, then the last one again."""

    def __init__(self, states: list[dict[str, object]]) -> None:
        self.states = states
        self.gets = 0

    async def get(self, path: str) -> _State:
        assert path == "/state"
        self.gets += 1
        return _State(self.states[min(self.gets, len(self.states)) - 1])


def test_without_an_event_stream_the_state_is_polled_into_the_same_events() -> None:
    from xaynet.participant.transport import EventsNotSupported
    from xaynet.testdrive.ledger import Ledger, RoundRecord

    class Probe(follow.Follower[RoundRecord]):
        def __init__(self) -> None:
            super().__init__(Ledger(), rounds=None)
            self.models: list[tuple[int, object]] = []

        def _on_model(self, round_id: int, data: dict[str, object]) -> None:
            self.models.append((round_id, data.get("model_id")))

    model_1 = {"round_id": 1, "model_id": "1_a"}
    model_2 = {"round_id": 2, "model_id": "2_b"}
    probe = Probe()
    probe._client = _Client(  # type: ignore[assignment]
        [
            {"round_id": 2, "phase": "sum", "since": 1.0, "global_model": model_1},
            {"round_id": 2, "phase": "update", "since": 2.0, "global_model": model_1},
            {"round_id": 3, "phase": "sum", "since": 3.0, "global_model": model_2},
        ]
    )

    async def no_stream() -> AsyncIterator[tuple[str, Any]]:
        raise EventsNotSupported("HTTP 404")
        yield  # an async generator

    async def scenario() -> None:
        monitor = asyncio.ensure_future(probe._monitor(no_stream()))
        await asyncio.sleep(1.3)  # three polls, 0.5 s apart
        monitor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await monitor

    asyncio.run(scenario())
    # the model already out when polling began is not news; the next one is
    assert probe.models == [(2, "2_b")]
    assert probe.ledger.round(2).phases  # the phases were followed
    assert probe._following.is_set()
