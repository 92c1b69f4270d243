"""The asyncio driver: runs a ParticipantMachine against a Transport until cancelled.

The :class:`Agent` is the only place with a clock. It answers the machine's requests with the
transport, asks a :class:`ModelProvider` for local models, fetches every new global model, and
waits between steps:

* with the coordinator's event stream (``GET /events``) a wait for the next round, the sum dict
  or the seeds ends as soon as a matching ``round`` / ``phase`` event arrives (a timeout of
  ``event_timeout`` guards against lost events);
* without it (or while it is broken) the agent polls ``/params`` with the ``poll_backoff``;
* after failures (network, 5xx, 503 ``storage_unavailable``) it waits ``retry_backoff``.

Failures are logged on the ``xaynet.sdk`` logger. After ``give_up_after`` consecutive failed
exchanges the agent raises :class:`CoordinatorUnreachable`; with ``None`` it keeps retrying
forever (long-running participants) and logs a warning for each failure. A round the
participant cannot serve (another model length) raises :class:`~xaynet.errors.ConfigError`
unless ``skip_unsupported_rounds`` is set; a local model of the wrong length or data type
raises :class:`~xaynet.errors.ModelError` from the provider's call site.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from xaynet.errors import ConfigError, DecodeError, LocalProtocolError
from xaynet.participant.actions import (
    Compute,
    Event,
    FetchParams,
    FetchSeeds,
    FetchSums,
    GlobalModelAvailable,
    MessageAccepted,
    MessageRejected,
    ModelAnnounced,
    NeedModel,
    ParamsReceived,
    Post,
    PostResult,
    Request,
    Retrying,
    RoleTaken,
    RoundStarted,
    RoundUnsupported,
    SeedsReceived,
    SumsReceived,
    TaskAbandoned,
    TaskFailed,
    TransportFailed,
    Wait,
    Waited,
    WaitReason,
)
from xaynet.participant.backoff import Backoff
from xaynet.participant.machine import ParticipantMachine
from xaynet.participant.transport import (
    EventsNotSupported,
    GlobalModel,
    Transport,
    TransportError,
)
from xaynet.round import RoundParameters

__all__ = [
    "Agent",
    "AgentSettings",
    "ModelProvider",
    "CoordinatorUnreachable",
    "DEFAULT_POLL_BACKOFF",
    "DEFAULT_FAILURE_BACKOFF",
]

log = logging.getLogger("xaynet.sdk")

#: Polling /params without events: quick at first (phases of the demo last seconds).
DEFAULT_POLL_BACKOFF = Backoff(initial=0.25, factor=1.5, maximum=4.0, jitter=0.3)
#: Waiting after failures: the transport has retried already, so back off further.
DEFAULT_FAILURE_BACKOFF = Backoff(initial=0.5, factor=2.0, maximum=30.0, jitter=0.5)

# Waits that an event can end, and the waits for the app's model.
_EVENT_WAITS = frozenset(
    {WaitReason.NO_ROUND, WaitReason.NEXT_ROUND, WaitReason.SUMS, WaitReason.SEEDS}
)
_RETRY_WAITS = frozenset({WaitReason.RETRY, WaitReason.TRANSPORT})
# Phases in which the awaited dictionary is still to come.
_BEFORE = {WaitReason.SUMS: {"sum"}, WaitReason.SEEDS: {"sum", "update"}}


class CoordinatorUnreachable(TransportError):  # noqa: N818 - reads as a condition
    """The coordinator did not answer ``give_up_after`` exchanges in a row."""


class ModelProvider(Protocol):
    """Where the agent gets local models from (the app)."""

    def wants_update(self, params: RoundParameters) -> bool:
        """Whether to take this round's Update task (``False`` declines it)."""
        ...

    async def local_model(
        self, params: RoundParameters, global_model: GlobalModel | None
    ) -> tuple[Any, float] | None:
        """``(model, weight)`` for the round, or ``None`` if none is ready yet (asked again)."""
        ...


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How the agent waits and when it gives up (see the module docstring)."""

    use_events: bool = True
    event_timeout: float = 15.0
    poll_backoff: Backoff = DEFAULT_POLL_BACKOFF
    retry_backoff: Backoff = DEFAULT_FAILURE_BACKOFF
    give_up_after: int | None = None
    skip_unsupported_rounds: bool = False

    def __post_init__(self) -> None:
        if self.event_timeout <= 0:
            raise LocalProtocolError("event_timeout must be > 0")
        if self.give_up_after is not None and (
            isinstance(self.give_up_after, bool)
            or not isinstance(self.give_up_after, int)
            or self.give_up_after < 1
        ):
            raise LocalProtocolError("give_up_after must be a positive int or None")


class Agent:
    """Drives ``machine`` with ``transport``; call :meth:`run` (until cancelled or an error).

    ``on_event`` sees every machine event; ``on_global_model`` every newly published global
    model (both are called in the agent's task and must not block for long).
    """

    def __init__(
        self,
        machine: ParticipantMachine,
        transport: Transport,
        provider: ModelProvider,
        *,
        settings: AgentSettings | None = None,
        rng: random.Random | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_global_model: Callable[[GlobalModel], None] | None = None,
        name: str | None = None,
    ) -> None:
        self.machine = machine
        self.transport = transport
        self.provider = provider
        self.settings = settings if settings is not None else AgentSettings()
        self._rng = rng if rng is not None else random.Random()
        self._on_event = on_event
        self._on_global_model = on_global_model
        self.name = name if name is not None else machine.public_key.hex()[:12]
        #: the newest global model fetched (``None`` before the first)
        self.global_model: GlobalModel | None = None
        self._model_stale = True
        self._failures = 0
        # Events from the stream (and pokes), numbered, so a wait can tell what came after the
        # last look at /params.
        self._serial = 0
        self._seen_serial = 0
        self._recent: collections.deque[tuple[int, str, Any]] = collections.deque(maxlen=64)
        self._notify = asyncio.Event()
        self.events_connected = False

    def __repr__(self) -> str:
        return f"<Agent {self.name} {self.machine.state.value}>"

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; raises the errors described in the module docstring."""
        listener = asyncio.create_task(self._listen()) if self.settings.use_events else None
        try:
            while True:
                await self.step()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def step(self) -> Request:
        """Answer one request of the machine; returns it."""
        machine = self.machine
        request = machine.next_request()
        if self._model_stale and (
            isinstance(request, NeedModel)
            or (isinstance(request, Wait) and request.reason not in _RETRY_WAITS)
        ):
            await self.refresh_global_model()
        if isinstance(request, FetchParams):
            self._seen_serial = self._serial
            result = await self._exchange(self.transport.get_params(request.etag))
            if isinstance(result, TransportFailed):
                self._emit(machine.receive(result))
            else:
                params, etag = result
                self._emit(machine.receive(ParamsReceived(params, etag)))
        elif isinstance(request, FetchSums):
            sums = await self._exchange(self.transport.get_sums())
            self._emit(machine.receive(_or(sums, SumsReceived)))
        elif isinstance(request, FetchSeeds):
            seeds = await self._exchange(self.transport.get_seeds(request.summer_pk))
            self._emit(machine.receive(_or(seeds, SeedsReceived)))
        elif isinstance(request, Post):
            outcome = await self._exchange(self.transport.post_message(request.body))
            if isinstance(outcome, TransportFailed):
                self._emit(machine.receive(outcome))
            else:
                result = PostResult(outcome.status, outcome.reason, outcome.detail)
                self._emit(machine.receive(result))
        elif isinstance(request, Compute):
            self._emit(machine.compute())
        elif isinstance(request, NeedModel):
            await self._provide_model(request.params)
        elif isinstance(request, Wait):
            await self._wait(request)
            self._emit(machine.receive(Waited()))
        return request

    async def _provide_model(self, params: RoundParameters) -> None:
        machine = self.machine
        if not self.provider.wants_update(params):
            self._emit(machine.decline_task())
            return
        local = await self.provider.local_model(params, self.global_model)
        if local is None:
            machine.model_unavailable()
            return
        model, weight = _unpack_local_model(local)
        machine.set_model(model, weight)

    async def _exchange(self, call: Any) -> Any:
        """Await a transport call; failures become TransportFailed (or CoordinatorUnreachable)."""
        try:
            result = await call
        except (TransportError, DecodeError) as exc:
            self._failures += 1
            limit = self.settings.give_up_after
            where = getattr(self.transport, "url", "the coordinator")
            if limit is not None and self._failures >= limit:
                raise CoordinatorUnreachable(
                    f"coordinator {where} unreachable: {self._failures} failed attempts in a "
                    f"row, the last: {exc}"
                ) from exc
            log.warning(
                "%s: coordinator %s unreachable or answering badly (failure %d, retrying): %s",
                self.name,
                where,
                self._failures,
                exc,
            )
            return TransportFailed(str(exc))
        if self._failures:
            log.info("%s: coordinator answers again after %d failures", self.name, self._failures)
            self._failures = 0
        return result

    # -- waiting -----------------------------------------------------------------------------

    def poke(self, kind: str = "poke", data: Any = None) -> None:
        """Record an event (from the stream, or the app: ``local_model``) and wake waits."""
        self._serial += 1
        self._recent.append((self._serial, kind, data))
        self._notify.set()

    async def _wait(self, request: Wait) -> None:
        reason = request.reason
        settings = self.settings
        if reason in _RETRY_WAITS:
            await asyncio.sleep(settings.retry_backoff.delay(request.attempt, self._rng))
            return
        if reason in _EVENT_WAITS and self.events_connected:
            timeout = settings.event_timeout
        else:
            timeout = settings.poll_backoff.delay(request.attempt, self._rng)
        await self._wait_for_event(reason, timeout)

    def _wakes(self, reason: WaitReason, kind: str, data: Any) -> bool:
        if kind in ("open", "round", "error"):
            return True  # a new round, or events may have been missed
        if reason is WaitReason.MODEL:
            return kind == "local_model"
        if kind == "model":
            return True  # fetch the new global model promptly
        if kind != "phase" or not isinstance(data, dict):
            return False
        if data.get("round_id") != self.machine.round_id:
            return True
        return data.get("phase") not in _BEFORE.get(reason, {"sum", "update", "sum2", "unmask"})

    async def _wait_for_event(self, reason: WaitReason, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        since = self._seen_serial
        while True:
            if any(
                serial > since and self._wakes(reason, kind, data)
                for serial, kind, data in self._recent
            ):
                return
            since = self._serial
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._notify.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._notify.wait(), remaining)

    async def _listen(self) -> None:
        """Follow the event stream; without one, the agent polls."""
        try:
            async for kind, data in self.transport.events():
                if kind == "open":
                    self.events_connected = True
                elif kind == "error":
                    self.events_connected = False
                    log.info("%s: event stream interrupted: %s", self.name, data)
                elif kind == "model":
                    self._model_stale = True
                    round_id = data.get("round_id") if isinstance(data, dict) else None
                    if isinstance(round_id, int):
                        self._emit(self.machine.receive(ModelAnnounced(round_id)))
                self.poke(kind, data)
        except EventsNotSupported as exc:
            log.info("%s: no event stream (%s): polling /params", self.name, exc)
        finally:
            self.events_connected = False

    # -- global models -----------------------------------------------------------------------

    async def refresh_global_model(self) -> GlobalModel | None:
        """Fetch the newest global model; calls ``on_global_model`` when it is a new one."""
        try:
            model = await self.transport.get_model()
        except (TransportError, DecodeError) as exc:
            log.warning("%s: cannot fetch the global model: %s", self.name, exc)
            return self.global_model
        self._model_stale = False
        if model is None:
            return self.global_model
        if self.global_model is None or model.key != self.global_model.key:
            self.global_model = model
            log.info("%s: new global model of round %d", self.name, model.round_id)
            if self._on_global_model is not None:
                self._on_global_model(model)
        return self.global_model

    # -- events ----------------------------------------------------------------------------------

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            _log_event(self.name, event)
            if isinstance(event, GlobalModelAvailable):
                self._model_stale = True
            if self._on_event is not None:
                self._on_event(event)
            if isinstance(event, RoundUnsupported) and not self.settings.skip_unsupported_rounds:
                raise ConfigError(
                    f"round {event.round_id} cannot be served by this participant: {event.reason}"
                )


def _or(value: Any, response: Callable[[Any], Any]) -> Any:
    return value if isinstance(value, TransportFailed) else response(value)


def _unpack_local_model(local: Any) -> tuple[Any, float]:
    from xaynet.errors import ModelError

    if not isinstance(local, tuple) or len(local) != 2:
        raise ModelError(
            f"the local model must be a (model, weight) pair, got {type(local).__name__}"
        )
    model, weight = local
    return model, weight


def _log_event(name: str, event: Event) -> None:
    if isinstance(event, TaskFailed):
        log.error(
            "%s: round %d: the %s task failed: %s %s",
            name,
            event.round_id,
            event.task.value,
            event.reason,
            event.detail,
        )
    elif isinstance(event, Retrying):
        log.info("%s: retrying %s: %s", name, event.request, event.detail)
    elif isinstance(event, RoundUnsupported):
        log.error("%s: round %d unsupported: %s", name, event.round_id, event.reason)
    elif isinstance(event, RoleTaken | RoundStarted | TaskAbandoned | MessageRejected):
        log.info("%s: %s", name, event)
    elif isinstance(event, MessageAccepted):
        log.info(
            "%s: round %d: %s message accepted (%d parts, %d bytes)",
            name,
            event.round_id,
            event.task.value,
            event.parts,
            event.size,
        )
    else:
        log.debug("%s: %s", name, event)
