"""The shutdown guard of test-drive runs: a stuck task is reported, not waited for forever."""

from __future__ import annotations

import asyncio
import logging

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
