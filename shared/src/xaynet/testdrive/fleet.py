"""Many simulated participants in one asyncio process, against one coordinator.

A :class:`Fleet` runs ``participants`` SDK agents (:class:`~xaynet.sdk.Agent`), each with its
own identity and :class:`~xaynet.participant.ParticipantMachine`, over one
:class:`~xaynet.sdk.SharedTransport`: one httpx connection pool and one ``GET /events`` stream
for all of them. It follows the coordinator's events itself (phase changes with their times,
new global models), checks every global model against the weighted mean of the updates the
coordinator accepted, and keeps it all in a :class:`~.ledger.Ledger`.

Dropouts: in each round, ``dropout_summers`` of the summers send their Sum message and then
vanish (they never fetch their seeds, so never send Sum2), and ``dropout_updaters`` of the
updaters decline their Update task. Which ones is drawn from the run's seed and the round;
the fractions are attributes, so a program can change them while the fleet runs.

::

    fleet = Fleet(FleetConfig("http://127.0.0.1:8081", participants=100, rounds=3))
    ledger = await fleet.run()

Used by ``xaynet-test-drive`` (:mod:`xaynet.testdrive.cli`), its tests and the round benchmark.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from xaynet.crypto import SigningKeyPair
from xaynet.errors import ConfigError
from xaynet.participant.actions import (
    Compute,
    Event,
    MessageAccepted,
    MessageRejected,
    Request,
    Retrying,
    RoleTaken,
    RoundStarted,
    State,
    Task,
    TaskAbandoned,
    TaskFailed,
)
from xaynet.participant.machine import DEFAULT_MAX_MESSAGE_SIZE, ParticipantMachine
from xaynet.participant.role import Role, choose_role
from xaynet.participant.transport import (
    GlobalModel,
    PostOutcome,
    Transport,
)
from xaynet.round import RoundParameters
from xaynet.sdk.agent import Agent, AgentSettings, CoordinatorUnreachable
from xaynet.sdk.fanout import SharedTransport
from xaynet.sdk.http import ClientCert, HttpTransport
from xaynet.testdrive.follow import Follower, bounded_gather, check_run_options
from xaynet.testdrive.ledger import Ledger, ModelDump, RoundRecord, Submission
from xaynet.testdrive.models import ModelSpec, WeightSpec
from xaynet.testdrive.transport import Gate, Traffic, http_client

__all__ = [
    "Fleet",
    "FleetConfig",
    "Member",
    "Traffic",
    "CoordinatorUnreachable",
    "elapsed",
    "reach_coordinator",
]

log = logging.getLogger("xaynet.testdrive")


# What each compute step of the machine does, for the CPU figures.
_STEP = {State.NEW_ROUND: "role", State.SUM: "sum", State.SUM2: "sum2", State.UPDATE: "update"}
#: How long a global-model check waits for POST answers of its round still in flight.
_INFLIGHT_GRACE = 5.0
#: Rounds whose per-participant submissions are kept (older ones are pruned in long runs).
_KEEP_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Everything about a run (the CLI's options).

    ``model_length``: the length the participants serve (``None``: whatever the rounds say).
    ``seed``: identities, weights, models and dropouts follow from it (``None``: fresh
    identities, and a random seed for the rest, reported as :attr:`Fleet.seed`).
    ``timeout``: per HTTP request. ``verify`` / ``client_cert``: TLS, as in the SDK.
    ``give_up_after``: consecutive failed requests before a participant gives up and the fleet
    stops with :class:`CoordinatorUnreachable` (``None``: retry forever).
    ``connections``: the size of the shared connection pool (and of requests in flight).
    ``coalesce``: concurrent identical ``GET /params`` and ``GET /sums`` of the participants
    share one request (as through an HTTP cache); ``False``: each participant sends its own.
    ``rounds`` / ``duration``: stop after that many complete rounds / seconds.
    """

    url: str
    participants: int = 10
    rounds: int | None = None
    duration: float | None = None
    model_length: int | None = None
    model: ModelSpec = field(default_factory=ModelSpec)
    weights: WeightSpec = field(default_factory=lambda: WeightSpec.parse("1:100"))
    dropout_summers: float = 0.0
    dropout_updaters: float = 0.0
    seed: int | None = None
    dump_dir: Path | None = None
    timeout: float = 30.0
    verify: bool | str = True
    client_cert: ClientCert | None = None
    give_up_after: int | None = None
    connections: int = 16
    coalesce: bool = True
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    event_timeout: float = 15.0
    #: attempts of the first request before the coordinator counts as unreachable
    start_attempts: int = 3

    def __post_init__(self) -> None:
        check_run_options(self)
        if self.participants < 1:
            raise ConfigError("at least one participant")
        for name in ("dropout_summers", "dropout_updaters"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} is a fraction in [0, 1], got {value}")
        if self.model_length is not None and self.model_length < 1:
            raise ConfigError("model_length must be >= 1")


class _FleetAgent(Agent):
    """An agent whose heavy compute steps (masking, Sum2) run in the fleet's worker thread.

    Inline, one participant's masking would hold up every other participant's requests; in
    the worker, the event loop keeps serving the network (libsodium and numpy release the
    GIL). The thread CPU time of every step is reported to the member.
    """

    def __init__(self, member: Member, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._member = member

    async def step(self) -> Request:
        request = self.machine.next_request()
        if not isinstance(request, Compute):
            return await super().step()
        machine = self.machine
        round_id = machine.round_id
        executor = self._member.fleet.executor
        if request.state in _OFFLOADED and executor is not None:
            future = asyncio.get_running_loop().run_in_executor(executor, _timed, machine)
            try:
                events, seconds = await asyncio.shield(future)
            except asyncio.CancelledError:
                # The worker is changing the machine: let it finish before the agent stops
                # (a restart saves the machine next).
                with contextlib.suppress(Exception):
                    await future
                raise
        else:
            events, seconds = _timed(machine)
        self._member.on_compute(round_id, request.state, seconds)
        self._emit(events)
        return request


_OFFLOADED = frozenset({State.SUM2, State.UPDATE})


def _timed(machine: ParticipantMachine) -> tuple[list[Event], float]:
    start = time.thread_time()
    events = machine.compute()
    return events, time.thread_time() - start


class _MemberView:
    """A participant's transport: the shared one, plus dropouts and per-round POST counts."""

    def __init__(self, view: Transport, member: Member) -> None:
        self._view = view
        self._member = member
        self.url = getattr(view, "url", "the coordinator")

    async def get_params(self, etag: str | None) -> tuple[RoundParameters | None, str | None]:
        return await self._view.get_params(etag)

    async def get_sums(self) -> dict[bytes, bytes] | None:
        return await self._view.get_sums()

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        if self._member.drops_out(Role.SUM):
            return None  # the vanished summer never learns its seeds: no Sum2
        return await self._view.get_seeds(summer_pk)

    async def get_model(self) -> GlobalModel | None:
        return await self._view.get_model()

    async def post_message(self, body: bytes) -> PostOutcome:
        fleet = self._member.fleet
        round_id = self._member.machine.round_id
        if round_id is not None:
            record = fleet.ledger.round(round_id)
            record.posts += 1
            record.bytes_posted += len(body)
        fleet.inflight[round_id] += 1
        try:
            return await self._view.post_message(body)
        finally:
            fleet.inflight[round_id] -= 1

    def events(self) -> AsyncIterator[tuple[str, Any]]:
        return self._view.events()

    async def aclose(self) -> None:
        """The shared transport owns the connections."""


class Member:
    """One simulated participant: identity, weight, machine and agent; the agent's provider."""

    def __init__(self, fleet: Fleet, index: int, keys: SigningKeyPair, weight: float) -> None:
        self.fleet = fleet
        self.index = index
        self.weight = weight
        self.public_key = keys.public.hex()
        self.machine = self._machine(keys=keys)
        self.agent: Agent | None = None
        self.task: asyncio.Task[None] | None = None
        #: (round id, model) handed to the SDK for the current Update task
        self.pending: tuple[int, Any] | None = None
        self._dropped_sum2: int | None = None
        #: (round id, task) of the latest accepted messages
        self.accepted: collections.deque[tuple[int, str]] = collections.deque(maxlen=16)

    def __repr__(self) -> str:
        return f"<Member {self.index} {self.machine.state.value}>"

    def _machine(
        self, *, keys: SigningKeyPair | None = None, state: bytes | None = None
    ) -> ParticipantMachine:
        config = self.fleet.config
        if state is not None:
            return ParticipantMachine.restore(state, random_bytes=os.urandom)
        assert keys is not None
        return ParticipantMachine(
            keys,
            random_bytes=os.urandom,  # ephemeral and mask seeds stay secret, even here
            max_weight=self.fleet.max_weight,
            max_message_size=config.max_message_size,
            model_length=config.model_length,
        )

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        fleet = self.fleet
        assert fleet.shared is not None, "the fleet is not running"
        self.agent = _FleetAgent(
            self,
            self.machine,
            _MemberView(fleet.shared.view(), self),
            self,
            settings=fleet.agent_settings,
            rng=random.Random(f"agent:{fleet.seed}:{self.index}"),
            on_event=self.on_event,
            name=f"p{self.index:05d}",
        )
        self.task = asyncio.get_running_loop().create_task(
            self.agent.run(), name=f"test-drive-p{self.index:05d}"
        )
        self.task.add_done_callback(fleet._agent_done)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.remove_done_callback(self.fleet._agent_done)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def restart(self) -> bytes:
        """Stop, save, restore from the saved bytes and go on (a device that restarted)."""
        await self.stop()
        state = self.machine.save()
        self.machine = self._machine(state=state)
        self.start()
        return state

    # -- the agent's model provider ------------------------------------------------------------

    def wants_update(self, params: RoundParameters) -> bool:
        if self.drops_out(Role.UPDATE):
            self.fleet.ledger.round(params.round_id).dropped["update"] += 1
            return False
        return True

    async def local_model(
        self, params: RoundParameters, global_model: GlobalModel | None
    ) -> tuple[Any, float]:
        fleet = self.fleet
        model = fleet.config.model.local_model(fleet.seed, self.index, params)
        self.pending = (params.round_id, model)
        record = fleet.ledger.round(params.round_id)
        submission = Submission(self.index, self.public_key, self.weight)
        record.submissions[self.index] = submission
        if fleet.dump is not None:
            fleet.dump.submitted(record, submission, model, _describe(params))
        return model, self.weight

    def drops_out(self, role: Role) -> bool:
        """Whether this participant skips its ``role`` task in the current round."""
        params = self.machine.params
        if params is None:
            return False
        dropped = self.index in self.fleet.dropouts(params, role)
        if dropped and role is Role.SUM and self._dropped_sum2 != params.round_id:
            self._dropped_sum2 = params.round_id
            self.fleet.ledger.round(params.round_id).dropped["sum"] += 1
        return dropped

    # -- what the SDK reports --------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        fleet = self.fleet
        ledger = fleet.ledger
        if isinstance(event, RoundStarted):
            fleet.params.setdefault(event.round_id, event.params)
            return
        if isinstance(event, Retrying):
            ledger.last_error = f"{event.request}: {event.detail}"
            ledger.last_error_at = time.monotonic()
            if event.round_id is not None:
                ledger.round(event.round_id).retries += 1
            fleet.retrying()
            return
        round_id = getattr(event, "round_id", None)
        if not isinstance(round_id, int):
            return
        record = ledger.round(round_id)
        if isinstance(event, RoleTaken):
            record.roles[event.role.value] += 1
        elif isinstance(event, MessageAccepted):
            record.accepted[event.task.value] += 1
            record.accepted_at(event.task.value, time.time())
            self.accepted.append((round_id, event.task.value))
            record.message_bytes[event.task.value] += event.size
            if event.task is Task.UPDATE:
                self._accepted_update(record)
        elif isinstance(event, MessageRejected):
            record.rejected[f"{event.task.value}: {event.reason}"] += 1
            self._update_status(record, event.task, f"rejected: {event.reason}")
        elif isinstance(event, TaskAbandoned):
            record.abandoned[f"{event.task.value}: {event.reason}"] += 1
            self._update_status(record, event.task, f"abandoned: {event.reason}")
        elif isinstance(event, TaskFailed):
            record.failed[f"{event.task.value}: {event.reason}"] += 1
            self._update_status(record, event.task, f"failed: {event.reason}")

    def _accepted_update(self, record: RoundRecord) -> None:
        pending, self.pending = self.pending, None
        if pending is None or pending[0] != record.round_id:
            record.note = f"participant {self.index}: an accepted update without its model"
            return
        record.add_update(self.weight, pending[1])
        submission = record.submissions.get(self.index)
        if submission is not None:
            submission.status = "accepted"

    def _update_status(self, record: RoundRecord, task: Task, status: str) -> None:
        if task is not Task.UPDATE:
            return
        submission = record.submissions.get(self.index)
        if submission is not None and submission.status == "submitted":
            submission.status = status
        if self.pending is not None and self.pending[0] == record.round_id:
            self.pending = None

    def on_compute(self, round_id: int | None, state: State, seconds: float) -> None:
        step = _STEP.get(state)
        if step is not None and round_id is not None:
            self.fleet.ledger.round(round_id).cpu[step].append(seconds)


def _describe(params: RoundParameters) -> dict[str, Any]:
    return {
        "model_length": params.model_length,
        "data_type": params.mask_config.vect.data_type.name,
        "mask_config": {
            "vect": params.mask_config.vect.names(),
            "unit": params.mask_config.unit.names(),
        },
    }


def _power_of_two_above(weight: float) -> float:
    """The SDK's max_weight: a power of two >= every weight.

    Any common bound gives the same global model (the factor cancels out), and with a power of
    two every scalar ``weight / max_weight`` is a binary64 number, which the numpy masking path
    multiplies exactly; other scalars (37/100) take the exact Python path, ten times slower.
    """
    return float(2 ** math.ceil(math.log2(weight)))


def _identity_seed(seed: int | None, index: int) -> bytes:
    if seed is None:
        return os.urandom(32)
    return hashlib.sha256(f"xaynet-test-drive:{seed}:{index}".encode()).digest()


class Fleet(Follower[RoundRecord]):
    """The participants of a run (see the module docstring)."""

    def __init__(self, config: FleetConfig) -> None:
        super().__init__(Ledger(), config.rounds)
        self.config = config
        #: what models, weights and dropouts follow from (drawn if the config has none)
        self.seed = (
            config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
        )
        self.max_weight = _power_of_two_above(config.weights.max_weight)
        self.dropout_summers = config.dropout_summers
        self.dropout_updaters = config.dropout_updaters
        self.traffic = Traffic()
        self.agent_settings = AgentSettings(
            event_timeout=config.event_timeout, give_up_after=config.give_up_after
        )
        self.dump = (
            ModelDump(config.dump_dir, max_weight=self.max_weight)
            if config.dump_dir is not None
            else None
        )
        #: round id -> its parameters, from the participants
        self.params: dict[int, RoundParameters] = {}
        #: POST /message requests in flight, per round id
        self.inflight: collections.Counter[int | None] = collections.Counter()
        self.shared: SharedTransport | None = None
        #: the worker thread of the participants' masking and Sum2 work
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._dropouts: dict[tuple[int, Role], frozenset[int]] = {}
        self.members = [
            Member(
                self,
                i,
                SigningKeyPair.from_seed(_identity_seed(config.seed, i)),
                config.weights.weight(self.seed, i),
            )
            for i in range(config.participants)
        ]

    def __repr__(self) -> str:
        return f"<Fleet {len(self.members)} participants at {self.config.url}>"

    # -- running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> Ledger:
        """Run until ``stop`` is set, the rounds are complete, the duration passed or an error.

        Raises :class:`CoordinatorUnreachable` (at start, or when ``give_up_after`` failures
        happened), :class:`~xaynet.errors.ConfigError` (a round the participants cannot serve)
        and whatever else stopped a participant.
        """
        config = self.config
        self._done = asyncio.Event()
        self._following = asyncio.Event()
        stop = stop if stop is not None else asyncio.Event()
        client = self._client = self._http_client()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="test-drive-compute"
        )
        try:
            await self._check_reachable(client)
            transport = HttpTransport(
                config.url, client=client, rng=random.Random(f"http:{self.seed}")
            )
            gate = Gate(transport, slots=config.connections, coalesce=config.coalesce)
            # Each agent reads its copy of the event stream: room for a round's worth of events.
            self.shared = SharedTransport(gate, queue_size=64)
            await self._follow(
                self.shared.view().events(),
                self._start_members,
                stop,
                duration=config.duration,
                timeout=config.timeout,
            )
        finally:
            self.stopped_at = time.monotonic()
            await self._shutdown()
        if self.error is not None:
            raise self.error
        return self.ledger

    def stop(self) -> None:
        """Ask :meth:`run` to return (from the event loop, e.g. a signal handler)."""
        if self._done is not None:
            self._done.set()

    async def restart(self, index: int) -> bytes:
        """Save participant ``index``, restore it from the bytes and go on; returns them."""
        return await self.members[index].restart()

    def _start_members(self) -> None:
        for member in self.members:
            member.start()

    def _agent_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self.error is None:
            self.error = error
            if self._done is not None:
                self._done.set()

    async def _shutdown(self) -> None:
        await bounded_gather("the participants", [member.stop() for member in self.members])
        await self._cancel_tasks()
        if self.dump is not None:
            self.dump.finish_all(self.ledger)
        if self.shared is not None:
            await self.shared.aclose()  # closes the client too
        elif self._client is not None:
            await self._client.aclose()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None

    def _http_client(self) -> httpx.AsyncClient:
        config = self.config
        # One more connection for the event stream.
        return http_client(
            config.url,
            connections=min(config.connections, len(self.members)) + 1,
            timeout=config.timeout,
            verify=config.verify,
            client_cert=config.client_cert,
            traffic=self.traffic,
        )

    async def _check_reachable(self, client: httpx.AsyncClient) -> None:
        config = self.config
        response = await reach_coordinator(client, config.url, config.start_attempts)
        if response.status_code == 200 and config.model_length is not None:
            length = response.json().get("model_length")
            if length != config.model_length:
                raise ConfigError(
                    f"the coordinator's rounds have models of {length} values, the "
                    f"participants serve {config.model_length} (--model-length)"
                )

    # -- dropouts ------------------------------------------------------------------------------

    def dropouts(self, params: RoundParameters, role: Role) -> frozenset[int]:
        """The participants that skip their ``role`` task in this round (drawn once)."""
        fraction = self.dropout_summers if role is Role.SUM else self.dropout_updaters
        if fraction <= 0:
            return frozenset()
        key = (params.round_id, role)
        chosen = self._dropouts.get(key)
        if chosen is None:
            with_role = [
                m.index for m in self.members if choose_role(m.machine.keys, params).role is role
            ]
            count = math.floor(fraction * len(with_role) + 1e-9)
            rng = random.Random(f"dropout:{self.seed}:{params.round_id}:{role.value}")
            chosen = frozenset(rng.sample(with_role, count))
            self._dropouts[key] = chosen
            for old in [k for k in self._dropouts if k[0] < params.round_id - _KEEP_ROUNDS]:
                del self._dropouts[old]
        return chosen

    # -- the coordinator's events -------------------------------------------------------------

    def _on_model(self, round_id: int, data: dict[str, Any]) -> None:
        model_id = data.get("model_id")
        self._spawn(self._check_model(round_id, model_id if isinstance(model_id, str) else None))

    def _prune(self, round_id: int) -> None:
        for old, record in self.ledger.rounds.items():
            if old < round_id - _KEEP_ROUNDS and record.submissions:
                record.submissions.clear()
        for old in [r for r in self.params if r < round_id - _KEEP_ROUNDS]:
            del self.params[old]

    async def _check_model(self, round_id: int, model_id: str | None) -> None:
        assert self.shared is not None
        record = self.ledger.round(round_id)
        model = await self._fetch_model(self.shared.view(), round_id)
        if model is None:
            record.model_id = model_id
            record.note = f"could not fetch the global model of round {round_id}"
            self._notify("model", record)
            return
        # Answers to this round's POSTs still on their way would change the expected mean.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _INFLIGHT_GRACE
        while self.inflight[round_id] > 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        record.model_id = model.model_id or model_id or "initial"
        params = self.params.get(round_id)
        if not record.complete or params is None:
            record.note = f"the fleet joined in the {record.seen_in} phase: not checked"
        elif not record.check(model.values, params.mask_config, self.max_weight):
            self.ledger.mismatches.append(round_id)
            log.error("round %d: the global model does not verify: %s", round_id, record.note)
        if self.dump is not None:
            self.dump.finish(record, model.values)
        self._model_done(record)


async def reach_coordinator(client: httpx.AsyncClient, url: str, attempts: int) -> httpx.Response:
    """The coordinator's first answer to ``GET /params`` (HTTP 200 or 204).

    Connection failures and HTTP 5xx are tried ``attempts`` times; then, or at once for an
    answer no coordinator gives, :class:`CoordinatorUnreachable`.
    """
    last = "no answer"
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(min(2.0, 0.25 * 2**attempt))
        try:
            response = await client.get("/params")
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}".rstrip(": ")
            continue
        status = response.status_code
        if status >= 500:
            last = f"GET /params answered HTTP {status}"
            continue
        if status not in (200, 204):
            raise CoordinatorUnreachable(
                f"{url} does not look like a xaynet coordinator: GET /params answered HTTP {status}"
            )
        return response
    raise CoordinatorUnreachable(
        f"cannot reach the coordinator at {url} ({attempts} attempts): {last}"
    )


class _Timed(Protocol):
    started_at: float | None
    stopped_at: float | None


def elapsed(fleet: _Timed) -> float:
    """Seconds since the fleet started (to its stop, once stopped)."""
    if fleet.started_at is None:
        return 0.0
    end = fleet.stopped_at if fleet.stopped_at is not None else time.monotonic()
    return end - fleet.started_at
