"""Simulated devices that train the digits model and take part in masked rounds.

A :class:`DeviceFleet` runs one :class:`~xaynet.sdk.agent.Agent` per device over one shared
transport (one event stream, whatever the number of devices). Each device holds its own shard of
the training data (:mod:`xaynet.browser.digits`), trains one epoch from the newest global
model when it updates, and reports what it does through ``report(dict)``: the browser worker
posts these dicts to the page, tests and benchmarks read them. Nothing here touches the
browser: the fleet runs in CPython too (over ``HttpTransport``), which is how the native side of
the benchmarks and the unit tests drive it.

Reports (JSON-ready dicts, ``type`` says which):

* ``device`` -- one device's state: number, public key, shard size, round, role (``sum``,
  ``update``, ``idle`` or ``None`` before the first round), activity, last local loss, counts of
  accepted and rejected messages, the last error;
* ``removed`` -- a device left;
* ``global_model`` -- a new global model, with its accuracy and loss on the held-out images;
* ``coordinator`` -- the event stream: ``open`` / ``error`` and the ``phase`` / ``round`` events;
* ``timing`` -- how long a task took (``train``, ``mask``, ``aggregate``, ``post``) in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xaynet.browser import digits
from xaynet.errors import LocalProtocolError
from xaynet.participant.actions import (
    Compute,
    Event,
    FetchSeeds,
    FetchSums,
    MessageAccepted,
    MessageRejected,
    NeedModel,
    Post,
    Request,
    Retrying,
    RoleTaken,
    RoundStarted,
    State,
    Task,
    TaskAbandoned,
    TaskFailed,
    Wait,
    WaitReason,
)
from xaynet.participant.backoff import Backoff
from xaynet.participant.machine import ParticipantMachine, RandomBytes
from xaynet.participant.role import Role
from xaynet.participant.transport import GlobalModel, Transport
from xaynet.round import RoundParameters
from xaynet.sdk.agent import Agent, AgentSettings, ModelProvider
from xaynet.sdk.fanout import SharedTransport

__all__ = ["DeviceFleet", "DeviceStatus", "FLEET_AGENT_SETTINGS", "Report"]

Report = Callable[[dict[str, Any]], None]

log = logging.getLogger("xaynet.browser")

#: Devices in a page come back quickly after an outage: retry within 5 s, forever.
FLEET_AGENT_SETTINGS = AgentSettings(
    retry_backoff=Backoff(initial=0.5, factor=2.0, maximum=5.0, jitter=0.3),
    skip_unsupported_rounds=True,
)
#: Local models kept per device for inspection (the end-to-end tests check the global model
#: against them).
KEEP_ROUNDS = 8

_ROLE_NAMES = {Role.SUM: "sum", Role.UPDATE: "update", Role.NONE: "idle"}
_WAIT_ACTIVITY = {
    WaitReason.NO_ROUND: "waiting for a round",
    WaitReason.NEXT_ROUND: "waiting for the next round",
    WaitReason.SUMS: "waiting for the sum dict",
    WaitReason.SEEDS: "waiting for the seeds",
    WaitReason.MODEL: "training",
    WaitReason.RETRY: "coordinator busy: retrying",
    WaitReason.TRANSPORT: "coordinator unreachable: retrying",
}
_COMPUTE_ACTIVITY = {
    State.NEW_ROUND: ("choosing a role", None),
    State.SUM: ("drawing the round key", None),
    State.SUM2: ("aggregating masks", "aggregate"),
    State.UPDATE: ("masking", "mask"),
}


@dataclass
class DeviceStatus:
    """What the page shows of one device (see the module docstring, ``device`` reports)."""

    number: int
    public_key: str
    #: the digits shard it trains on and its size (``None`` when the page supplies the models)
    shard: int | None
    samples: int | None
    labels: list[int]
    round_id: int | None = None
    role: str | None = None
    activity: str = "starting"
    loss: float | None = None
    accepted: int = 0
    rejected: int = 0
    error: str | None = None
    #: why it is retrying (the coordinator unreachable or busy), while it is
    note: str | None = None
    #: the last message accepted in the current round (``sum2`` for a summer that finished)
    done: str | None = None
    #: round -> {"model", "weight", "accepted"} for the last KEEP_ROUNDS rounds it updated in
    local_models: dict[int, dict[str, Any]] = field(default_factory=dict)

    def as_report(self) -> dict[str, Any]:
        return {
            "type": "device",
            "number": self.number,
            "public_key": self.public_key,
            "shard": self.shard,
            "samples": self.samples,
            "labels": self.labels,
            "round_id": self.round_id,
            "role": self.role,
            "activity": self.activity,
            "loss": self.loss,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "error": self.error,
            "note": self.note,
        }


class _Trainer:
    """The agent's model provider: one epoch of SGD on the device's shard."""

    def __init__(self, device: _Device) -> None:
        self.device = device

    def wants_update(self, params: RoundParameters) -> bool:
        return params.model_length == digits.MODEL_LENGTH

    async def local_model(
        self, params: RoundParameters, global_model: GlobalModel | None
    ) -> tuple[Any, float]:
        device = self.device
        start = list(global_model.values) if global_model is not None else digits.zero_model()
        if len(start) != digits.MODEL_LENGTH:
            start = digits.zero_model()
        device.set_activity("training")
        await asyncio.sleep(0)  # let the report out before the CPU work
        began = time.perf_counter()
        model, mean_loss = digits.train_epoch(
            start, device.data.x, device.data.y, rng=device.rng, learning_rate=device.learning_rate
        )
        device.fleet.timing("train", time.perf_counter() - began, device.status.number)
        status = device.status
        status.loss = mean_loss
        device.keep_local_model(params.round_id, model, device.data.samples, digits.MAX_WEIGHT)
        device.publish()
        return model, float(device.data.samples)


class _DeviceAgent(Agent):
    """An agent that says what it is about to do before doing it (the page's activity column)."""

    device: _Device

    async def step(self) -> Request:
        request = self.machine.next_request()
        device = self.device
        timed: str | None = None
        if isinstance(request, Compute):
            activity, timed = _COMPUTE_ACTIVITY.get(request.state, ("computing", None))
            device.set_activity(activity)
        elif isinstance(request, Post):
            part = f" ({request.part + 1}/{request.parts})" if request.parts > 1 else ""
            device.set_activity(f"sending {request.task.value}{part}")
            timed = "post"
        elif isinstance(request, FetchSums):
            device.set_activity("fetching the sum dict")
        elif isinstance(request, FetchSeeds):
            device.set_activity("fetching the seeds")
        elif isinstance(request, Wait):
            activity = _WAIT_ACTIVITY[request.reason]
            done = device.status.done
            if request.reason is WaitReason.NEXT_ROUND and done is not None:
                activity = f"{done} accepted: waiting for the next round"
            device.set_activity(activity)
        elif isinstance(request, NeedModel):
            device.set_activity("training")
        if timed is not None:
            await asyncio.sleep(0)  # the activity report goes out before the work blocks
        began = time.perf_counter()
        result = await super().step()
        if timed is not None:
            device.fleet.timing(timed, time.perf_counter() - began, device.status.number)
        return result


class _Device:
    def __init__(
        self,
        fleet: DeviceFleet,
        number: int,
        machine: ParticipantMachine,
        *,
        data: digits.LocalData | None = None,
        provider: Callable[[_Device], ModelProvider] | None = None,
    ) -> None:
        self.fleet = fleet
        self.rng = random.Random(fleet.rng.getrandbits(64))
        self.learning_rate = fleet.learning_rate
        self.status = DeviceStatus(
            number=number,
            public_key=machine.public_key.hex(),
            shard=data.shard if data is not None else None,
            samples=data.samples if data is not None else None,
            labels=data.label_counts() if data is not None else [],
        )
        if provider is None:
            if data is None:
                raise LocalProtocolError("a device needs its data or a model provider")
            self.data = data
        agent = _DeviceAgent(
            machine,
            fleet.shared.view(),
            _Trainer(self) if provider is None else provider(self),
            settings=fleet.agent_settings,
            rng=random.Random(fleet.rng.getrandbits(64)),
            on_event=self.on_event,
            on_global_model=fleet.on_global_model,
            name=f"device-{number}",
        )
        agent.device = self
        self.agent = agent
        self.task: asyncio.Task[None] | None = None

    def keep_local_model(
        self, round_id: int, model: list[float], weight: float, max_weight: float
    ) -> None:
        """Remember what the device sends in ``round_id`` (for :meth:`DeviceFleet.local_models`);
        ``scalar`` is what the masking weighs it with."""
        models = self.status.local_models
        models[round_id] = {
            "model": model,
            "weight": weight,
            "scalar": weight / max_weight,
            "accepted": False,
        }
        for old in sorted(models)[:-KEEP_ROUNDS]:
            del models[old]

    def set_activity(self, activity: str) -> None:
        status = self.status
        if activity != status.activity:
            status.activity = activity
            if "retrying" not in activity:
                status.note = None
            self.publish()

    def publish(self) -> None:
        self.fleet.report(self.status.as_report())

    def on_event(self, event: Event) -> None:
        status = self.status
        if isinstance(event, RoundStarted):
            status.round_id, status.role, status.error = event.round_id, None, None
            status.done = None
        elif isinstance(event, RoleTaken):
            status.round_id, status.role = event.round_id, _ROLE_NAMES[event.role]
            status.error = None
        elif isinstance(event, MessageAccepted):
            status.accepted += 1
            status.error = None
            status.done = event.task.value
            local = status.local_models.get(event.round_id)
            if event.task is Task.UPDATE and local is not None:
                local["accepted"] = True
            status.activity = f"{event.task.value} accepted"
        elif isinstance(event, MessageRejected):
            # Too late for the phase (a device that joined mid-round) is no failure: the
            # TaskAbandoned that follows says so.
            status.rejected += 1
        elif isinstance(event, TaskFailed):
            status.error = f"{event.task.value} failed: {event.reason} {event.detail}".rstrip()
        elif isinstance(event, TaskAbandoned) and event.reason != "new_round":
            status.activity = f"too late for this round's {event.task.value} ({event.reason})"
        elif isinstance(event, Retrying):
            status.note = event.detail[:200]  # not an error: the device carries on
        else:
            return
        self.publish()

    async def run(self) -> None:
        try:
            await self.agent.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # a broken device is shown (and logged), the others go on
            log.exception("device %d stopped", self.status.number)
            self.status.activity = "stopped"
            self.status.error = f"{type(exc).__name__}: {exc}"
            self.publish()


class DeviceFleet:
    """Devices over one ``transport`` (see the module docstring).

    ``dataset`` is the parsed digits data, ``report`` receives every report, ``random_bytes``
    supplies the devices' keys and secrets (``os.urandom``), ``rng`` the non-secret randomness
    (SGD order, jitter). Devices are numbered from ``first_device`` on; the number picks the
    data shard, so two fleets in the same rounds (a page and native devices) should not overlap.
    """

    def __init__(
        self,
        transport: Transport,
        dataset: digits.Dataset | None,
        report: Report,
        *,
        random_bytes: RandomBytes,
        rng: random.Random | None = None,
        agent_settings: AgentSettings = FLEET_AGENT_SETTINGS,
        learning_rate: float = 0.3,
        first_device: int = 0,
    ) -> None:
        if first_device < 0:
            raise ValueError("first_device must be >= 0")
        self.shared = SharedTransport(transport)
        self.dataset = dataset
        self.report = report
        self.random_bytes = random_bytes
        self.rng = rng if rng is not None else random.Random()
        self.agent_settings = agent_settings
        self.learning_rate = learning_rate
        self._shards = digits.shard_indices(dataset.y_train) if dataset is not None else None
        self._devices: dict[int, _Device] = {}
        self._next_number = first_device
        self._evaluated: dict[tuple[int, str | None], dict[str, Any]] = {}
        self._watcher: asyncio.Task[None] | None = None

    # -- devices -------------------------------------------------------------------------------

    def add_device(
        self,
        provider: Callable[[_Device], ModelProvider] | None = None,
        *,
        max_weight: float = digits.MAX_WEIGHT,
        model_length: int = digits.MODEL_LENGTH,
    ) -> int:
        """Start a new device; returns its number (which also picks its data shard).

        Without ``provider`` the device trains the digits model on its shard. With one, its
        local models come from ``provider(device)`` (e.g. the page's own training, see
        :mod:`xaynet.browser.page`), for rounds of ``model_length`` values.
        """
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        if provider is None and self.dataset is None:
            raise LocalProtocolError("no data set: a device needs a model provider")
        number = self._next_number
        self._next_number += 1
        machine = ParticipantMachine.new(
            random_bytes=self.random_bytes, max_weight=max_weight, model_length=model_length
        )
        data = None
        if provider is None:
            assert self.dataset is not None
            data = digits.local_data(self.dataset, number, self._shards)
        device = _Device(self, number, machine, data=data, provider=provider)
        self._devices[number] = device
        device.publish()
        device.task = asyncio.get_running_loop().create_task(device.run())
        return number

    async def remove_device(self, number: int) -> bool:
        """Stop device ``number``; ``False`` if there is none."""
        device = self._devices.pop(number, None)
        if device is None:
            return False
        if device.task is not None:
            device.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await device.task
        self.report({"type": "removed", "number": number})
        return True

    def provider_of(self, number: int) -> ModelProvider | None:
        """Where device ``number`` gets its local models (``None``: no such device)."""
        device = self._devices.get(number)
        return None if device is None else device.agent.provider

    @property
    def numbers(self) -> list[int]:
        return sorted(self._devices)

    def statuses(self) -> list[dict[str, Any]]:
        return [self._devices[n].status.as_report() for n in self.numbers]

    def local_models(self, round_id: int) -> list[dict[str, Any]]:
        """The local models the devices made for ``round_id``, with weight and acceptance."""
        found = []
        for number in self.numbers:
            local = self._devices[number].status.local_models.get(round_id)
            if local is not None:
                found.append({"number": number, **local})
        return found

    def global_models(self) -> list[dict[str, Any]]:
        """Every global model seen, with its accuracy, oldest first."""
        return sorted(self._evaluated.values(), key=lambda m: m["round_id"])

    async def aclose(self) -> None:
        for number in self.numbers:
            await self.remove_device(number)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.shared.aclose()

    # -- what the devices see --------------------------------------------------------------------

    def on_global_model(self, model: GlobalModel) -> None:
        if model.key in self._evaluated:
            return
        data = self.dataset
        values = list(model.values)
        summary: dict[str, Any] = {
            "type": "global_model",
            "round_id": model.round_id,
            "model_id": model.model_id,
        }
        if data is not None and len(values) == digits.MODEL_LENGTH:
            summary["accuracy"] = digits.accuracy(values, data.x_test, data.y_test)
            summary["loss"] = digits.loss(values, data.x_test, data.y_test)
        else:
            summary["values"] = values  # the page evaluates its own models
        self._evaluated[model.key] = summary
        self.report(summary)

    def timing(self, task: str, seconds: float, number: int) -> None:
        self.report({"type": "timing", "task": task, "seconds": seconds, "number": number})

    async def _watch(self) -> None:
        """Forward the coordinator's event stream to the page."""
        async for kind, data in self.shared.view().events():
            self.report({"type": "coordinator", "kind": kind, "data": data})
