"""SharedTransport: one event stream and coalesced model fetches for many agents."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

import asyncio
from typing import Any

from sdk._fakes import PARAMS, FakeTransport
from xaynet.participant.transport import EventsNotSupported, GlobalModel
from xaynet.sdk import SharedTransport


async def take(view: Any, count: int) -> list[tuple[str, Any]]:
    events = []
    async for event in view.events():
        events.append(event)
        if len(events) == count:
            break
    return events


def test_every_view_gets_every_event_from_one_stream() -> None:
    async def main() -> None:
        fake = FakeTransport(stream=asyncio.Queue())
        shared = SharedTransport(fake)
        one, two = shared.view(), shared.view()
        readers = [asyncio.create_task(take(v, 2)) for v in (one, two)]
        await asyncio.sleep(0.01)
        assert shared.subscribers == 2
        assert fake.stream is not None
        fake.stream.put_nowait(("open", {}))
        fake.stream.put_nowait(("round", {"round_id": 3}))
        results = await asyncio.gather(*readers)
        assert results == [[("open", {}), ("round", {"round_id": 3})]] * 2
        assert shared.subscribers == 0
        assert await one.get_params(None) == (PARAMS, '"3"')
        await one.aclose()  # a view owns nothing
        await shared.aclose()

    asyncio.run(main())


def test_model_fetches_are_shared_until_a_model_event() -> None:
    async def main() -> None:
        fake = FakeTransport(stream=asyncio.Queue(), model=GlobalModel(1, "1_a", [0.0]))
        shared = SharedTransport(fake, model_ttl=60)
        views = [shared.view() for _ in range(20)]
        models = await asyncio.gather(*(v.get_model() for v in views))
        assert {m.key for m in models if m is not None} == {(1, "1_a")}
        assert fake.calls.count("model") == 1
        await views[0].get_model()
        assert fake.calls.count("model") == 1, "still fresh"
        fake.model = GlobalModel(2, "2_b", [1.0])
        reader = asyncio.create_task(take(views[0], 1))
        await asyncio.sleep(0.01)
        assert fake.stream is not None
        fake.stream.put_nowait(("model", {"round_id": 2}))
        await reader
        model = await views[1].get_model()
        assert model is not None
        assert model.key == (2, "2_b")
        assert fake.calls.count("model") == 2
        await shared.aclose()

    asyncio.run(main())


def test_a_failed_model_fetch_is_not_cached() -> None:
    async def main() -> None:
        fake = FakeTransport(failing=True)
        view = SharedTransport(fake).view()
        with pytest.raises(Exception, match="connection refused"):
            await view.get_model()
        fake.failing = False
        assert await view.get_model() is None
        assert fake.calls.count("model") == 2

    asyncio.run(main())


def test_no_stream_is_reported_to_every_view() -> None:
    async def main() -> None:
        shared = SharedTransport(FakeTransport())
        for view in (shared.view(), shared.view()):
            with pytest.raises(EventsNotSupported):
                await take(view, 1)

    asyncio.run(main())


def test_a_view_that_subscribes_later_learns_that_the_stream_is_open() -> None:
    # Agents use the event timeout instead of polling only after an "open" event.
    async def main() -> None:
        fake = FakeTransport(stream=asyncio.Queue())
        shared = SharedTransport(fake)
        early = asyncio.create_task(take(shared.view(), 1))
        await asyncio.sleep(0.01)
        assert fake.stream is not None
        fake.stream.put_nowait(("open", {}))
        assert await early == [("open", {})]
        late = asyncio.create_task(take(shared.view(), 2))
        await asyncio.sleep(0.01)
        fake.stream.put_nowait(("round", {"round_id": 5}))
        assert await late == [("open", {}), ("round", {"round_id": 5})]
        fake.stream.put_nowait(("error", {"error": "gone"}))
        await asyncio.sleep(0.01)
        after_error = asyncio.create_task(take(shared.view(), 1))
        await asyncio.sleep(0.01)
        fake.stream.put_nowait(("open", {}))
        assert await after_error == [("open", {})], "no stale open while disconnected"
        await shared.aclose()

    async def bounded() -> None:
        async with asyncio.timeout(5):  # a missing event fails instead of hanging
            await main()

    asyncio.run(bounded())
