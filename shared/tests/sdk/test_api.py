"""The two high-level APIs on a scripted transport: lifecycle, hooks, early errors."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("numpy")

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from participant._fixtures import with_role

from sdk._fakes import PARAMS, SUMS, FakeTransport
from xaynet.errors import LocalProtocolError, ModelError
from xaynet.participant import Backoff, Role, State, Task
from xaynet.participant.actions import Event, MessageAccepted, RoleTaken
from xaynet.participant.transport import GlobalModel
from xaynet.sdk import (
    AsyncParticipant,
    Participant,
    ParticipantOptions,
    spawn_participant,
)

TINY = Backoff(initial=0.01, factor=1, maximum=0.01, jitter=0)
UPDATER, _ = with_role(Role.UPDATE, PARAMS)
NOBODY, _ = with_role(Role.NONE, PARAMS)


def options(fake: FakeTransport, **changes: Any) -> ParticipantOptions:
    settings: dict[str, Any] = {
        "transport_factory": lambda _url: fake,
        "poll_backoff": TINY,
        "retry_backoff": TINY,
        "keys": UPDATER,
    }
    settings.update(changes)
    return ParticipantOptions(**settings)


def eventually(done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Recorder(Participant):
    def __init__(self, model: Any, weight: float, *, label: str = "") -> None:
        self.model, self.weight, self.label = model, weight, label
        self.trained_on: list[Any] = []
        self.globals: list[Any] = []
        self.events: list[Event] = []
        self.stops = 0
        self.threads: set[int] = {threading.get_ident()}

    def train_round(self, global_model: Any) -> tuple[Any, float]:
        self.threads.add(threading.get_ident())
        self.trained_on.append(global_model)
        return self.model, self.weight

    def on_new_global_model(self, model: Any) -> None:
        self.globals.append(model)

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_stop(self) -> None:
        self.stops += 1


# -- spawn_participant ----------------------------------------------------------------------------


def test_a_spawned_participant_trains_sends_and_stops_cleanly() -> None:
    fake = FakeTransport(sums=SUMS, model=GlobalModel(2, "2_x", np.array([1.0, 2, 3, 4])))
    handle = spawn_participant(
        "http://fake", Recorder, [0.5] * 4, 3, label="kw", options=options(fake, max_weight=10)
    )
    participant = handle.participant
    assert isinstance(participant, Recorder)
    assert participant.label == "kw", "keyword arguments reach the constructor as keywords"
    eventually(lambda: any(isinstance(e, MessageAccepted) for e in participant.events))
    state = handle.stop()
    assert not handle.running
    assert participant.stops == 1
    assert len(participant.threads) == 1, "constructor and hooks run in the participant's thread"
    assert participant.threads != {threading.get_ident()}
    np.testing.assert_array_equal(participant.trained_on[0], [1, 2, 3, 4])
    np.testing.assert_array_equal(participant.globals[0], [1, 2, 3, 4])
    assert handle.global_model is not None
    assert handle.global_model.key == (2, "2_x")
    assert handle.public_key == UPDATER.public
    assert fake.posted
    # The state continues the same participant (its round is done: it waits for the next one).
    again = spawn_participant(
        "http://fake", Recorder, [0.5] * 4, 3, state=state, options=options(fake, keys=None)
    )
    assert again.public_key == UPDATER.public
    assert again.stop()


def test_train_round_without_a_global_model_gets_none() -> None:
    fake = FakeTransport(sums=SUMS)
    with spawn_participant("http://fake", Recorder, [0.0] * 4, 1, options=options(fake)) as h:
        participant = h.participant
        assert isinstance(participant, Recorder)
        eventually(lambda: bool(participant.trained_on))
    assert participant.trained_on == [None]
    assert not h.running


def test_a_wrong_local_model_stops_the_participant_with_model_error() -> None:
    fake = FakeTransport(sums=SUMS)
    handle = spawn_participant("http://fake", Recorder, [0.0] * 3, 1, options=options(fake))
    with pytest.raises(ModelError, match="3 values, the round expects 4"):
        handle.join(timeout=5)
    assert isinstance(handle.error, ModelError)
    assert handle.state is not None, "the state is saved even so"
    participant = handle.participant
    assert isinstance(participant, Recorder)
    assert participant.stops == 1
    with pytest.raises(ModelError):
        handle.stop()


def test_a_weight_above_max_weight_is_a_model_error() -> None:
    fake = FakeTransport(sums=SUMS)
    handle = spawn_participant(
        "http://fake", Recorder, [0.0] * 4, 11, options=options(fake, max_weight=10)
    )
    with pytest.raises(ModelError, match="exceeds max_weight 10"):
        handle.join(timeout=5)


class Declines(Recorder):
    def participate_in_update_task(self) -> bool:
        return False


def test_declining_never_trains() -> None:
    fake = FakeTransport(sums=SUMS)
    handle = spawn_participant("http://fake", Declines, [0.0] * 4, 1, options=options(fake))
    participant = handle.participant
    assert isinstance(participant, Declines)
    eventually(lambda: any(isinstance(e, RoleTaken) for e in participant.events))
    time.sleep(0.1)
    handle.stop()
    assert participant.trained_on == []
    assert fake.posted == []


class Broken(Participant):
    def __init__(self) -> None:
        raise RuntimeError("no data")

    def train_round(self, global_model: Any) -> tuple[Any, float]:  # pragma: no cover
        raise AssertionError


def test_spawn_raises_what_the_constructor_raised() -> None:
    with pytest.raises(RuntimeError, match="no data"):
        spawn_participant("http://fake", Broken, options=options(FakeTransport()))
    with pytest.raises(TypeError, match="subclass"):
        spawn_participant("http://fake", object)  # type: ignore[arg-type]


def test_keys_and_state_are_exclusive() -> None:
    state = options(FakeTransport()).machine().save()
    with pytest.raises(LocalProtocolError, match="not both"):
        options(FakeTransport()).machine(state)


# -- AsyncParticipant -----------------------------------------------------------------------------


def test_async_participant_sends_the_local_model_and_delivers_global_models() -> None:
    fake = FakeTransport(sums=SUMS, model=GlobalModel(5, "5_a", np.zeros(4)))
    events: list[Event] = []

    async def main() -> bytes:
        async with AsyncParticipant(
            "http://fake", options=options(fake, on_event=events.append, max_weight=4)
        ) as participant:
            first = await participant.next_global_model(timeout=5)
            assert first.key == (5, "5_a")
            with pytest.raises(TimeoutError):
                await participant.next_global_model(timeout=0.05)
            participant.set_local_model(np.full(4, 0.25), weight=2)
            assert participant.has_local_model
            async with asyncio.timeout(5):
                while not any(isinstance(e, MessageAccepted) for e in events):
                    await asyncio.sleep(0.01)
            assert not participant.has_local_model, "an Update task consumes the model"
            assert participant.role is Role.UPDATE
            assert participant.state is State.AWAITING
            assert participant.round_params == PARAMS
            fake.model = GlobalModel(6, "6_b", np.ones(4))
            fake.params = PARAMS.__class__(**{**_fields(PARAMS), "round_id": 6})
            second = await participant.next_global_model(timeout=5)
            assert second.key == (6, "6_b")
            return participant.save()

    state = asyncio.run(main())
    assert any(isinstance(e, MessageAccepted) and e.task is Task.UPDATE for e in events)
    assert b"signing_key_seed" in state


def _fields(params: Any) -> dict[str, Any]:
    return {name: getattr(params, name) for name in params.__dataclass_fields__}


def test_set_local_model_checks_early() -> None:
    fake = FakeTransport(params=None)

    async def main() -> None:
        participant = AsyncParticipant(
            "http://fake", options=options(fake, model_length=4, max_weight=2)
        )
        with pytest.raises(ModelError, match="exceeds max_weight"):
            participant.set_local_model([0.0] * 4, weight=3)
        with pytest.raises(ModelError, match="3 values"):
            participant.set_local_model([0.0] * 3)
        with pytest.raises(RuntimeError, match="not running"):
            await participant.next_global_model()
        async with participant:
            fake.params = PARAMS
            async with asyncio.timeout(5):
                while participant.round_params is None:
                    await asyncio.sleep(0.01)
            with pytest.raises(ModelError, match="finite"):
                participant.set_local_model([0.0, float("nan"), 0.0, 0.0])
        assert await participant.stop()

    asyncio.run(main())


def test_async_participant_surfaces_a_fatal_error() -> None:
    fake = FakeTransport(failing=True)

    async def main() -> None:
        async with AsyncParticipant(
            "http://fake", options=options(fake, give_up_after=2, keys=NOBODY)
        ) as participant:
            await participant.next_global_model(timeout=5)

    from xaynet.sdk import CoordinatorUnreachable

    with pytest.raises(CoordinatorUnreachable):
        asyncio.run(main())


def test_a_local_model_trained_from_a_replaced_global_model_is_not_submitted() -> None:
    from xaynet.participant.transport import GlobalModel
    from xaynet.sdk.aio import _Slot

    old, new = GlobalModel(1, "1_a", [0.0]), GlobalModel(2, "2_b", [1.0])
    slot = _Slot()

    async def offered(current: GlobalModel | None) -> Any:
        return await slot.local_model(PARAMS, current)

    slot.put(([0.5], 1.0), old.key)  # trained from round 1's model
    assert asyncio.run(offered(old)) == ([0.5], 1.0)  # still current: submitted
    slot.put(([0.5], 1.0), old.key)
    assert asyncio.run(offered(new)) is None  # round 2 published meanwhile: stale, dropped
    assert slot.model is None
    slot.put(([0.7], 2.0), None)  # the app never awaited a global model: no staleness check
    assert asyncio.run(offered(new)) == ([0.7], 2.0)
