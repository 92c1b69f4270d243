"""SDK participants against the real coordinator process (memory storage, phases of seconds)."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("numpy")

import asyncio
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdk._coordinator import Coordinator, free_port, started
from xaynet.participant import Task
from xaynet.participant.actions import Event, MessageAccepted, RoleTaken
from xaynet.sdk import (
    AsyncParticipant,
    Backoff,
    CoordinatorUnreachable,
    GlobalModel,
    HttpTransport,
    Participant,
    ParticipantOptions,
    SharedTransport,
    spawn_participant,
)

LENGTH = 20
MAX_WEIGHT = 1000
FAST = Backoff(initial=0.05, factor=2, maximum=0.5, jitter=0.2)
DEADLINE = 45.0

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coordinator]:
    process = started(tmp_path_factory.mktemp("coordinator"), model_length=LENGTH)
    try:
        yield process
    finally:
        process.kill()


def f32_model(rng: random.Random) -> Any:
    return np.array([rng.uniform(-1, 1) for _ in range(LENGTH)], dtype=np.float32).astype(
        np.float64
    )


@dataclass
class Ledger:
    """What every participant trained and sent, and which global models they saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: (participant, round) -> (model, weight) returned by train_round
    trained: dict[tuple[int, int], tuple[Any, float]] = field(default_factory=dict)
    #: (participant, round) of every accepted Update message
    accepted: set[tuple[int, int]] = field(default_factory=set)
    global_models: dict[int, Any] = field(default_factory=dict)

    def expected(self, round_id: int) -> tuple[Any, int]:
        with self.lock:
            sent = [self.trained[key] for key in sorted(self.accepted) if key[1] == round_id]
        weights = np.array([w for _, w in sent])
        models = np.stack([m for m, _ in sent])
        return weights @ models / weights.sum(), len(sent)


def check_weighted_mean(ledger: Ledger, round_id: int, values: Any) -> None:
    expected, count = ledger.expected(round_id)
    assert count >= 3, f"round {round_id}: the coordinator needs 3 updates, saw {count}"
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6)


class Trainer(Participant):
    """Trains by moving the global model towards its own target, weighted by its samples."""

    def __init__(self, index: int, samples: int, ledger: Ledger, *, seed: int) -> None:
        self.index, self.samples, self.ledger = index, samples, ledger
        self.rng = random.Random(seed)
        self.round_id = -1
        self.stopped = False
        self.thread = threading.get_ident()

    def train_round(self, global_model: Any) -> tuple[Any, float]:
        assert threading.get_ident() == self.thread, "hooks run in the participant's thread"
        base = np.zeros(LENGTH) if global_model is None else global_model
        model = (base * 0.5 + f32_model(self.rng)).astype(np.float32).astype(np.float64)
        with self.ledger.lock:
            self.ledger.trained[(self.index, self.round_id)] = (model, float(self.samples))
        return model, self.samples

    def on_event(self, event: Event) -> None:
        if isinstance(event, RoleTaken):
            self.round_id = event.round_id
        if isinstance(event, MessageAccepted) and event.task is Task.UPDATE:
            with self.ledger.lock:
                self.ledger.accepted.add((self.index, event.round_id))

    def on_new_global_model(self, model: Any) -> None:
        assert model.shape == (LENGTH,)

    def on_stop(self) -> None:
        self.stopped = True


def options(**changes: Any) -> ParticipantOptions:
    settings: dict[str, Any] = {
        "max_weight": MAX_WEIGHT,
        "model_length": LENGTH,
        "poll_backoff": FAST,
        "retry_backoff": FAST,
        "event_timeout": 2.0,
        "rng": random.Random(1),
    }
    settings.update(changes)
    return ParticipantOptions(**settings)


def test_five_callback_participants_complete_two_rounds_with_fedavg(
    coordinator: Coordinator,
) -> None:
    ledger = Ledger()
    samples = [50, 100, 150, 300, 900]
    handles = [
        spawn_participant(
            coordinator.url, Trainer, i, n, ledger, seed=i, options=options(name=f"p{i}")
        )
        for i, n in enumerate(samples)
    ]
    try:
        checked: set[int] = set()
        deadline = time.monotonic() + DEADLINE
        while len(checked) < 2:
            if time.monotonic() > deadline:
                coordinator.fail(f"two rounds did not complete; checked {sorted(checked)}")
            for handle in handles:
                assert handle.running, handle.error
                model = handle.global_model
                if model is not None and model.round_id not in checked:
                    check_weighted_mean(ledger, model.round_id, model.values)
                    checked.add(model.round_id)
            time.sleep(0.1)
    finally:
        states = [handle.stop(timeout=15) for handle in handles]
    for handle in handles:
        assert not handle.running
        assert isinstance(handle.participant, Trainer)
        assert handle.participant.stopped, "on_stop was called"
    assert len(set(states)) == 5, "five identities, five states"


def test_async_participants_get_the_weighted_global_model(coordinator: Coordinator) -> None:
    rng = random.Random(11)
    models = [f32_model(rng) for _ in range(5)]
    weights = [10, 20, 40, 80, 160]
    accepted: set[tuple[int, int]] = set()

    def recorder(i: int) -> Any:
        def on_event(event: Event) -> None:
            if isinstance(event, MessageAccepted) and event.task is Task.UPDATE:
                accepted.add((i, event.round_id))

        return on_event

    async def member(participant: AsyncParticipant, i: int) -> None:
        # An Update task consumes the local model: offer it again for the next one.
        while True:
            if not participant.has_local_model:
                participant.set_local_model(models[i], weights[i])
            await asyncio.sleep(0.05)

    async def main() -> GlobalModel:
        # One connection pool and one event stream for the five (SharedTransport).
        shared = SharedTransport(HttpTransport(coordinator.url))
        participants = [
            AsyncParticipant(
                coordinator.url,
                options=options(on_event=recorder(i), name=f"a{i}"),
                transport=shared.view(),
            )
            for i in range(5)
        ]
        for p in participants:
            p.start()
        members = [asyncio.create_task(member(p, i)) for i, p in enumerate(participants)]
        try:
            async with asyncio.timeout(DEADLINE):
                while True:
                    model = await participants[0].next_global_model()
                    if any(r == model.round_id for _, r in accepted):
                        return model
        finally:
            for task in members:
                task.cancel()
            await asyncio.gather(*members, return_exceptions=True)
            for p in participants:
                await p.stop()
            await shared.aclose()

    model = asyncio.run(main())
    sent = sorted(i for i, r in accepted if r == model.round_id)
    assert len(sent) >= 3
    w = np.array([weights[i] for i in sent], dtype=np.float64)
    expected = w @ np.stack([models[i] for i in sent]) / w.sum()
    np.testing.assert_allclose(model.values, expected, rtol=0, atol=1e-6)


def test_an_unreachable_coordinator_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    async def strict() -> None:
        quick = options(give_up_after=3, retries=0)
        async with AsyncParticipant(url, options=quick) as participant:
            await participant.next_global_model(timeout=20)

    with pytest.raises(CoordinatorUnreachable, match=r"unreachable: 3 failed attempts"):
        asyncio.run(strict())

    # Long-running mode: keep retrying, log each failure, stop cleanly.
    caplog.set_level(logging.WARNING, logger="xaynet.sdk")
    handle = spawn_participant(url, Trainer, 0, 1, Ledger(), seed=0, options=options(retries=0))
    deadline = time.monotonic() + 10
    while "unreachable" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handle.running
    state = handle.stop(timeout=10)
    assert state
    assert f"coordinator {url} unreachable" in caplog.text


def test_a_coordinator_that_dies_is_reported(tmp_path: Path) -> None:
    process = started(tmp_path, model_length=LENGTH)

    async def main() -> None:
        quick = options(give_up_after=4, retries=0)
        async with AsyncParticipant(process.url, options=quick) as participant:
            async with asyncio.timeout(10):
                while participant.round_params is None:
                    await asyncio.sleep(0.05)
            process.kill()
            await participant.next_global_model(timeout=30)

    try:
        with pytest.raises(CoordinatorUnreachable, match=process.url):
            asyncio.run(main())
    finally:
        process.kill()
