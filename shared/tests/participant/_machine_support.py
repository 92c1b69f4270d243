"""Builders and a synchronous driver for the state machine tests (stdlib + xaynet only)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from helpers import InMemoryCoordinator

from participant._fixtures import ROUND_KEYS, make_params, with_role
from xaynet.crypto import SigningKeyPair
from xaynet.message import Message, Tag, open_message
from xaynet.participant import ParticipantMachine, Role
from xaynet.participant.actions import (
    Compute,
    Event,
    FetchParams,
    FetchSeeds,
    FetchSums,
    NeedModel,
    ParamsReceived,
    Post,
    PostResult,
    Request,
    SeedsReceived,
    SumsReceived,
    Wait,
    Waited,
)
from xaynet.round import RoundParameters

PARAMS = make_params()
NEXT_PARAMS = make_params(round_id=4, seed=bytes(range(1, 33)))
MODEL = [0.5, -0.25, 0.125, 0.0]


def rng_bytes(seed: int = 0) -> Callable[[int], bytes]:
    """A deterministic ``random_bytes`` for tests (never for real participants)."""
    return random.Random(seed).randbytes


def machine_for(
    role: Role, params: RoundParameters = PARAMS, **settings: Any
) -> ParticipantMachine:
    keys, _ = with_role(role, params)
    return ParticipantMachine(keys, random_bytes=rng_bytes(), **settings)


def into_round(machine: ParticipantMachine, params: RoundParameters = PARAMS) -> list[Event]:
    """Feed ``params`` and choose the role; returns all events."""
    request = machine.next_request()
    assert isinstance(request, FetchParams), request
    events = machine.receive(ParamsReceived(params, etag='"e1"'))
    request = machine.next_request()
    assert request == Compute(machine.state), request
    return events + machine.compute()


def opened(body: bytes) -> Message:
    return Message.from_bytes(open_message(body, ROUND_KEYS))


def wait_then_refresh(machine: ParticipantMachine) -> list[Event]:
    """Answer the current Wait and the params refresh after it (nothing changed)."""
    request = machine.next_request()
    assert isinstance(request, Wait), request
    events = machine.receive(Waited())
    request = machine.next_request()
    assert isinstance(request, FetchParams), request
    return events + machine.receive(ParamsReceived(None))


def identities_for(params: RoundParameters, sums: int, updates: int) -> list[SigningKeyPair]:
    return [with_role(Role.SUM, params, i)[0] for i in range(sums)] + [
        with_role(Role.UPDATE, params, i)[0] for i in range(updates)
    ]


@dataclass
class Fleet:
    """Machines driven synchronously against an :class:`InMemoryCoordinator`.

    ``models[i]`` and ``weights[i]`` are what participant ``i`` trains; the fleet records which
    updates the coordinator accepted.
    """

    coordinator: InMemoryCoordinator
    machines: list[ParticipantMachine]
    models: list[list[float]]
    weights: list[float]
    events: list[list[Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.events = [[] for _ in self.machines]

    def step(self, i: int) -> Request | None:
        """Answer machine ``i``'s request; returns it, or None when it waits."""
        machine, coordinator = self.machines[i], self.coordinator
        request = machine.next_request()
        events: list[Event] = []
        if isinstance(request, FetchParams):
            events = machine.receive(ParamsReceived(coordinator.params))
        elif isinstance(request, Compute):
            events = machine.compute()
        elif isinstance(request, NeedModel):
            machine.set_model(self.models[i], self.weights[i])
        elif isinstance(request, FetchSums):
            published = coordinator.phase in (Tag.UPDATE, Tag.SUM2)
            events = machine.receive(SumsReceived(coordinator.sum_dict if published else None))
        elif isinstance(request, FetchSeeds):
            column = coordinator.seed_dict.get(request.summer_pk)
            published = coordinator.phase is Tag.SUM2
            events = machine.receive(SeedsReceived(column if published else None))
        elif isinstance(request, Post):
            rejected = len(coordinator.rejected)
            coordinator.receive(request.body)
            if len(coordinator.rejected) > rejected:
                result = PostResult(400, "malformed", coordinator.rejected[-1][1])
            else:
                result = PostResult(202, "accepted")
            events = machine.receive(result)
        elif isinstance(request, Wait):
            self.events[i].extend(events)
            return None
        self.events[i].extend(events)
        return request

    def run_phase(self, max_steps: int = 200) -> None:
        """Step every machine until all of them wait."""
        for i in range(len(self.machines)):
            for _ in range(max_steps):
                if self.step(i) is None:
                    break
            else:  # pragma: no cover - a machine that never waits is a bug
                raise AssertionError(f"machine {i} did not settle")

    def wake_all(self) -> None:
        for machine in self.machines:
            if isinstance(machine.next_request(), Wait):
                machine.receive(Waited())
