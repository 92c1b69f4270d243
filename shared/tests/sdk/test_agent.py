"""The asyncio driver against a scripted transport: waiting, polling, events, errors."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from participant._fixtures import with_role

from sdk._fakes import NEXT, PARAMS, SUMS, FakeTransport
from xaynet.errors import ConfigError, ModelError
from xaynet.participant import Backoff, ParticipantMachine, Role, Task
from xaynet.participant.actions import (
    Event,
    MessageAccepted,
    RoundStarted,
    RoundUnsupported,
    TaskAbandoned,
)
from xaynet.participant.transport import GlobalModel
from xaynet.round import RoundParameters
from xaynet.sdk import Agent, AgentSettings, CoordinatorUnreachable

TINY = Backoff(initial=0.01, factor=1, maximum=0.01, jitter=0)


@dataclass
class Provider:
    models: list[Any] = field(default_factory=list)
    wants: bool = True
    asked: int = 0

    def wants_update(self, params: RoundParameters) -> bool:
        return self.wants

    async def local_model(self, params: RoundParameters, global_model: Any) -> Any:
        self.asked += 1
        return self.models.pop(0) if self.models else None


def agent_for(
    role: Role,
    fake: FakeTransport,
    provider: Provider | None = None,
    *,
    machine: dict[str, Any] | None = None,
    **settings: Any,
) -> tuple[Agent, list[Event]]:
    keys, _ = with_role(role, PARAMS)
    events: list[Event] = []
    values = {"poll_backoff": TINY, "retry_backoff": TINY, "event_timeout": 30.0}
    values.update(settings)
    agent = Agent(
        ParticipantMachine(keys, random_bytes=random.Random(1).randbytes, **(machine or {})),
        fake,
        provider if provider is not None else Provider(),
        settings=AgentSettings(**values),
        rng=random.Random(2),
        on_event=events.append,
    )
    return agent, events


async def run_until(agent: Agent, done: Callable[[], bool], timeout: float = 5.0) -> None:
    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                if task.done():
                    task.result()
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def started(events: list[Event], round_id: int) -> Callable[[], bool]:
    return lambda: any(isinstance(e, RoundStarted) and e.round_id == round_id for e in events)


def test_without_events_the_agent_polls_params() -> None:
    fake = FakeTransport()
    agent, events = agent_for(Role.NONE, fake)

    async def main() -> None:
        await run_until(agent, lambda: fake.calls.count("params") >= 5)
        assert not agent.events_connected
        fake.params = NEXT
        await run_until(agent, started(events, 4))

    asyncio.run(main())


def test_with_events_the_agent_waits_for_them() -> None:
    fake = FakeTransport(stream=asyncio.Queue())
    agent, events = agent_for(Role.NONE, fake)

    async def until(done: Callable[[], bool], timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.005)

    async def main() -> None:
        assert fake.stream is not None
        fake.stream.put_nowait(("open", {}))
        task = asyncio.create_task(agent.run())
        try:
            await until(lambda: agent.events_connected and started(events, 3)())
            await asyncio.sleep(0.2)
            calls = fake.calls.count("params")
            assert calls <= 3, "no polling while the stream is up"
            # A phase event of the same round does not end the wait for the next round...
            fake.stream.put_nowait(("phase", {"round_id": 3, "phase": "update"}))
            await asyncio.sleep(0.2)
            assert fake.calls.count("params") == calls
            # ...a round event does, at once.
            fake.params = NEXT
            fake.stream.put_nowait(("round", {"round_id": 4}))
            await until(started(events, 4), timeout=1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())


def test_an_unreachable_coordinator_raises_after_give_up_after_failures() -> None:
    fake = FakeTransport(failing=True)
    agent, _ = agent_for(Role.NONE, fake, give_up_after=3)

    async def main() -> None:
        with pytest.raises(CoordinatorUnreachable, match="http://fake unreachable: 3 failed"):
            await run_until(agent, lambda: False)

    asyncio.run(main())
    assert fake.calls == ["params", "params", "params"]


def test_failures_are_logged_and_recovered_from(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xaynet.sdk")
    fake = FakeTransport(failing=True)
    agent, events = agent_for(Role.NONE, fake)

    async def main() -> None:
        await run_until(agent, lambda: len(fake.calls) >= 3)
        fake.failing = False
        await run_until(agent, started(events, 3))

    asyncio.run(main())
    assert "coordinator http://fake unreachable or answering badly (failure 1" in caplog.text
    assert "coordinator answers again" in caplog.text


def test_a_round_of_another_model_length_is_a_config_error() -> None:
    agent, _ = agent_for(Role.UPDATE, FakeTransport(), machine={"model_length": 9})
    with pytest.raises(ConfigError, match=r"cannot be served.*4 values"):
        asyncio.run(run_until(agent, lambda: False))


def test_unsupported_rounds_can_be_skipped() -> None:
    agent, events = agent_for(
        Role.UPDATE, FakeTransport(), machine={"model_length": 9}, skip_unsupported_rounds=True
    )
    asyncio.run(run_until(agent, lambda: any(isinstance(e, RoundUnsupported) for e in events)))


def test_a_wrong_local_model_is_raised_to_the_app() -> None:
    agent, _ = agent_for(Role.UPDATE, FakeTransport(), Provider([([0.0] * 3, 1.0)]))
    with pytest.raises(ModelError, match="3 values, the round expects 4"):
        asyncio.run(run_until(agent, lambda: False))
    agent, _ = agent_for(Role.UPDATE, FakeTransport(), Provider([[0.0] * 4]))
    with pytest.raises(ModelError, match=r"\(model, weight\) pair"):
        asyncio.run(run_until(agent, lambda: False))


def test_the_agent_waits_for_a_model_and_for_the_sums() -> None:
    fake = FakeTransport()
    provider = Provider()
    agent, events = agent_for(Role.UPDATE, fake, provider)

    async def main() -> None:
        await run_until(agent, lambda: provider.asked >= 2)
        assert fake.posted == []
        provider.models.append(([0.5] * 4, 1.0))
        await run_until(agent, lambda: fake.calls.count("sums") >= 2)
        fake.sums = SUMS
        await run_until(agent, lambda: bool(fake.posted))
        await run_until(agent, lambda: any(isinstance(e, MessageAccepted) for e in events))

    asyncio.run(main())
    assert any(isinstance(e, MessageAccepted) and e.task is Task.UPDATE for e in events)


def test_declining_the_update_task() -> None:
    agent, events = agent_for(Role.UPDATE, FakeTransport(), Provider(wants=False))
    done = lambda: TaskAbandoned(3, Task.UPDATE, "declined") in events  # noqa: E731
    asyncio.run(run_until(agent, done))


def test_global_models_are_fetched_once_per_new_model() -> None:
    seen: list[GlobalModel] = []
    fake = FakeTransport(stream=asyncio.Queue(), model=GlobalModel(2, "2_a", [1.0]))
    agent, _ = agent_for(Role.NONE, fake)
    agent._on_global_model = seen.append

    async def main() -> None:
        assert fake.stream is not None
        fake.stream.put_nowait(("open", {}))
        await run_until(agent, lambda: len(seen) == 1)
        fake.stream.put_nowait(("phase", {"round_id": 3, "phase": "sum2"}))
        await run_until(agent, lambda: fake.calls.count("params") >= 3, timeout=1)
        fake.model = GlobalModel(3, "3_b", [2.0])
        fake.stream.put_nowait(("model", {"round_id": 3, "model_id": "3_b"}))
        await run_until(agent, lambda: len(seen) == 2)

    asyncio.run(main())
    assert [m.key for m in seen] == [(2, "2_a"), (3, "3_b")]
    assert agent.global_model is seen[-1]


def test_settings_are_checked() -> None:
    with pytest.raises(Exception, match="give_up_after"):
        AgentSettings(give_up_after=0)
    with pytest.raises(Exception, match="event_timeout"):
        AgentSettings(event_timeout=0)
