"""Whole rounds of state machines against the in-memory coordinator: FedAvg comes out right."""

from __future__ import annotations

import random
from fractions import Fraction

from helpers import InMemoryCoordinator, f32, quantization_bound, weighted_mean

from participant._fixtures import CONFIG, ROUND_KEYS
from participant._machine_support import PARAMS, Fleet, identities_for, rng_bytes
from xaynet.message import Tag
from xaynet.participant import ParticipantMachine, Role, State, Task
from xaynet.participant.actions import MessageAccepted, RoleTaken, Wait


def make_fleet(sums: int, updates: int, samples: list[int], max_weight: int) -> Fleet:
    rng = random.Random(5)
    keys = identities_for(PARAMS, sums, updates)
    machines = [
        ParticipantMachine(
            k, random_bytes=rng_bytes(i), max_weight=max_weight, max_message_size=600
        )
        for i, k in enumerate(keys)
    ]
    models = [[rng.uniform(-1, 1) for _ in range(PARAMS.model_length)] for _ in keys]
    weights = [0.0] * sums + [float(n) for n in samples]
    return Fleet(InMemoryCoordinator(PARAMS, ROUND_KEYS), machines, models, weights)


def accepted(events: list[object], task: Task) -> bool:
    return any(isinstance(e, MessageAccepted) and e.task is task for e in events)


def test_a_round_of_machines_gives_the_sample_weighted_mean() -> None:
    samples = [10, 30, 60, 150]
    fleet = make_fleet(2, len(samples), samples, max_weight=1000)
    coordinator = fleet.coordinator

    fleet.run_phase()  # Sum phase: roles, Sum messages; updaters get their models and wait
    roles = [next(e.role for e in ev if isinstance(e, RoleTaken)) for ev in fleet.events]
    assert roles == [Role.SUM] * 2 + [Role.UPDATE] * 4
    assert len(coordinator.sum_dict) == 2
    assert all(isinstance(m.next_request(), Wait) for m in fleet.machines)
    assert [m.state for m in fleet.machines] == [State.SUM2] * 2 + [State.UPDATE] * 4

    coordinator.next_phase()
    fleet.wake_all()
    fleet.run_phase()  # Update phase: masked models in chunks
    assert len(coordinator.updaters) == 4
    assert coordinator.rejected == []

    coordinator.next_phase()
    assert coordinator.phase is Tag.SUM2
    fleet.wake_all()
    fleet.run_phase()  # Sum2 phase: both summers vote for the same mask
    assert sum(coordinator.votes.values()) == 2
    assert len(coordinator.votes) == 1

    for i, events in enumerate(fleet.events):
        tasks = [Task.SUM, Task.SUM2] if i < 2 else [Task.UPDATE]
        assert all(accepted(events, task) for task in tasks), (i, events)
    assert all(m.state is State.AWAITING for m in fleet.machines)

    global_model = coordinator.unmask()
    models = [[f32(v) for v in m] for m in fleet.models[2:]]
    expected = weighted_mean(models, samples)
    for value, exact in zip(global_model, expected, strict=True):
        bound = quantization_bound(CONFIG, 4, sum(samples) / 1000, float(exact))
        assert abs(Fraction(value) - exact) <= bound * 2
    # Not the unweighted mean: the weights matter.
    unweighted = weighted_mean(models, [1] * 4)
    assert any(abs(Fraction(v) - u) > 1e-3 for v, u in zip(global_model, unweighted, strict=True))
