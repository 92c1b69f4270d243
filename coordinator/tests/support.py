"""Helpers for the engine and API tests: a fake clock, small settings, simulated participants.

Not collected by pytest (no ``test_`` prefix). The pieces:

* :class:`Clock`: the engine's time, advanced by hand.
* :func:`make_settings`: small counts and short phases; :func:`make_engine` builds an engine
  over any storage with seeded round keys and a :class:`RecordingBus`.
* :class:`FlakyStorage`: a :class:`MemoryStorage` that fails, goes down or blocks on demand.
* :class:`Fleet`: signing keys from a seeded ``random.Random``; per round it picks summers and
  updaters with ``choose_role`` and builds their sealed request bodies.
* :class:`EngineDriver` / :class:`HttpDriver`: send bodies and read the dictionaries either
  straight through the engine or over HTTP; :class:`RoundRun` plays a round with either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import httpx
import numpy as np
import numpy.typing as npt

from xaynet.crypto import SigningKeyPair
from xaynet.mask import MaskObject, derive_mask, mask_model
from xaynet.message import LocalSeedDict, Message, Sum, Sum2, Update
from xaynet.participant import Role, RoleDecision, SumTask, UpdateTask, choose_role
from xaynet.participant import sealed_requests as _sealed_requests
from xaynet.round import RoundParameters
from xaynet_coordinator.app import engine_config
from xaynet_coordinator.engine import Engine
from xaynet_coordinator.events import Event, EventBus
from xaynet_coordinator.model_store import DirectoryModelStore
from xaynet_coordinator.phase import Phase
from xaynet_coordinator.settings import Settings
from xaynet_coordinator.state import CoordinatorState
from xaynet_coordinator.storage import StorageError
from xaynet_coordinator.storage.memory import MemoryStorage

__all__ = [
    "OCTET_STREAM",
    "START_TIME",
    "TOLERANCE",
    "Clock",
    "make_settings",
    "make_engine",
    "RecordingBus",
    "FlakyStorage",
    "Participant",
    "Fleet",
    "Reply",
    "Driver",
    "EngineDriver",
    "HttpDriver",
    "RoundRun",
    "weighted_mean",
    "seal",
    "read_sse",
    "StreamingASGITransport",
]

OCTET_STREAM = "application/octet-stream"
START_TIME = 1000.0
#: How close the global model must be to the weighted mean of the updates.
TOLERANCE = 1e-6

MODEL_LENGTH = 8
# Dyadic weights: exact in binary, and within the default unit bound (B0: scalars in [0, 1]).
SCALARS = (1.0, 0.5, 0.25, 0.75)


class Clock:
    """A fake clock: ``clock()`` is the engine's now; tests move it with :meth:`advance`."""

    def __init__(self, start: float = START_TIME) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- settings and engine ---------------------------------------------------------------------------


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_settings(models_dir: Path, **sections: Any) -> Settings:
    """Settings for tests: model length 8, phases of 1 to 10 s, a few messages per phase.

    Keyword arguments are sections merged into the defaults, e.g.
    ``make_settings(tmp_path, pet={"sum": {"count": {"max": 2}}})``.
    """
    base: dict[str, Any] = {
        "model": {"length": MODEL_LENGTH},
        "pet": {
            "sum": {
                "probability": 0.4,
                "count": {"min": 1, "max": 10},
                "time": {"min": 1, "max": 10},
            },
            "update": {
                "probability": 0.9,
                "count": {"min": 3, "max": 10},
                "time": {"min": 1, "max": 10},
            },
            "sum2": {"count": {"min": 1, "max": 10}, "time": {"min": 1, "max": 10}},
        },
        "models": {"directory": str(models_dir)},
    }
    return Settings(**_merge(base, sections))


class RecordingBus(EventBus):
    """An event bus that also keeps every event it published."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Event] = []

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        event = super().publish(kind, data)
        self.log.append(event)
        return event

    def phases(self) -> list[tuple[int, str]]:
        """(round id, phase) of every phase event, in order."""
        return [(e.data["round_id"], e.data["phase"]) for e in self.log if e.kind == "phase"]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.log]


def make_engine(
    settings: Settings,
    *,
    storage: Any = None,
    model_store: Any = None,
    clock: Clock,
    seed: int = 0,
    **config: Any,
) -> Engine:
    """An engine with seeded round keys (so rounds are reproducible) and a RecordingBus.

    ``config`` replaces fields of the :class:`EngineConfig` built from ``settings``
    (``checkpoint_every``, ``failure_retry``, ``mask``...).
    """
    rng = random.Random(seed)
    return Engine(
        dataclasses.replace(engine_config(settings), **config),
        storage if storage is not None else FlakyStorage(),
        model_store if model_store is not None else DirectoryModelStore(settings.models.directory),
        clock=clock,
        random_bytes=rng.randbytes,
        events=RecordingBus(),
    )


# -- storage that fails on demand ------------------------------------------------------------------


class _Gate:
    """Holds calls of one storage method until :meth:`open`; ``entered`` says one is waiting."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    async def wait(self) -> None:
        self.entered.set()
        await self._open.wait()


class FlakyStorage:
    """A MemoryStorage wrapper whose methods fail on demand.

    * :meth:`fail` makes a method raise :class:`StorageError`, before it runs (nothing written)
      or after it ran (written, but the caller sees an error, as when a connection drops after
      Redis executed a script), ``times`` times or until :meth:`heal`.
    * ``down = True`` makes every method raise and ``ping()`` answer False.
    * :meth:`gate` holds the calls of a method until the test opens the gate.

    Every saved coordinator state is kept in ``states`` (decoded), so tests can see a failure
    reason that a quick recovery replaced.
    """

    def __init__(self, inner: MemoryStorage | None = None) -> None:
        self.inner = inner if inner is not None else MemoryStorage()
        self.down = False
        self.states: list[CoordinatorState] = []
        self.calls: list[str] = []
        self._failing: dict[str, tuple[bool, int | None]] = {}
        self._gates: dict[str, _Gate] = {}

    def fail(self, method: str, *, after: bool = False, times: int | None = None) -> None:
        if not callable(getattr(self.inner, method, None)):
            raise AttributeError(f"MemoryStorage has no method {method}")
        self._failing[method] = (after, times)

    def heal(self) -> None:
        self._failing.clear()
        self.down = False

    def gate(self, method: str) -> _Gate:
        gate = self._gates[method] = _Gate()
        return gate

    async def ping(self) -> bool:
        return not self.down and await self.inner.ping()

    def failures(self) -> list[str]:
        """The failure reasons of every Failure state saved so far."""
        return [s.failure or "" for s in self.states if s.phase is Phase.FAILURE]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)
        if not callable(method):
            return method  # type: ignore[no-any-return]

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            gate = self._gates.pop(name, None)
            if gate is not None:
                await gate.wait()
            if self.down:
                raise StorageError(f"storage is down ({name})")
            after = self._take_failure(name)
            if after is False:
                raise StorageError(f"injected failure before {name}")
            result = await method(*args, **kwargs)
            if name == "save_state":
                self.states.append(CoordinatorState.from_bytes(args[0]))
            if after is True:
                raise StorageError(f"injected failure after {name}")
            return result

        return call

    def _take_failure(self, name: str) -> bool | None:
        """None: run normally; False: fail before; True: fail after."""
        if name not in self._failing:
            return None
        after, times = self._failing[name]
        if times is not None:
            if times <= 1:
                del self._failing[name]
            else:
                self._failing[name] = (after, times - 1)
        return after


# -- participants ----------------------------------------------------------------------------------


def seal(
    message: Message, keys: SigningKeyPair, *, max_message_size: int | None = None
) -> list[bytes]:
    """Sign and seal ``message`` (split into chunks when ``max_message_size`` is set)."""
    return _sealed_requests(message, keys, max_message_size=max_message_size, message_id=7)


@dataclasses.dataclass
class Participant:
    """One participant in one round: its keys, its role decision and its tasks."""

    keys: SigningKeyPair
    params: RoundParameters
    decision: RoleDecision
    ephemeral_seed: bytes
    rng: random.Random

    @property
    def pk(self) -> bytes:
        return self.keys.public

    @property
    def role(self) -> Role:
        return self.decision.role

    # -- summers --

    def sum_task(self) -> SumTask:
        return SumTask(self.keys, self.params, self.decision, self.ephemeral_seed)

    def sum_message(self) -> Message:
        if self.role is Role.SUM:
            return self.sum_task().sum_message()
        # a participant that is no summer claims to be one with its (ineligible) sum signature
        return Message(
            self.pk, self.params.coordinator_pk, Sum(self.decision.sum_signature, bytes(32))
        )

    def sum_body(self) -> bytes:
        (body,) = seal(self.sum_message(), self.keys)
        return body

    def sum2_message(self, seeds: Mapping[bytes, bytes]) -> Message:
        return self.sum_task().sum2_message(seeds)

    def sum2_body(self, seeds: Mapping[bytes, bytes]) -> bytes:
        (body,) = seal(self.sum2_message(seeds), self.keys)
        return body

    def sum2_body_with(self, mask: MaskObject) -> bytes:
        """A Sum2 carrying any mask (e.g. one derived from a wrong seed)."""
        message = Message(
            self.pk, self.params.coordinator_pk, Sum2(self.decision.sum_signature, mask)
        )
        (body,) = seal(message, self.keys)
        return body

    # -- updaters --

    def update_task(self) -> UpdateTask:
        return UpdateTask(self.keys, self.params, self.decision)

    def mask_seed(self) -> bytes:
        return self.rng.randbytes(32)

    def update_message(
        self,
        model: Sequence[float],
        sum_dict: Mapping[bytes, bytes],
        *,
        scalar: float = 1.0,
    ) -> Message:
        return self.update_task().update_message(
            list(model), scalar=scalar, mask_seed=self.mask_seed(), sum_dict=sum_dict
        )

    def update_bodies(
        self,
        model: Sequence[float],
        sum_dict: Mapping[bytes, bytes],
        *,
        scalar: float = 1.0,
        max_message_size: int | None = None,
    ) -> list[bytes]:
        message = self.update_message(model, sum_dict, scalar=scalar)
        return seal(message, self.keys, max_message_size=max_message_size)

    def update_body_with(
        self, masked: MaskObject, seed_dict: Iterable[tuple[bytes, bytes]]
    ) -> bytes:
        """An Update built by hand: any masked model, any local seed dict entries."""
        update_sig = self.decision.update_signature
        assert update_sig is not None, "only an updater has an update signature"
        message = Message(
            self.pk,
            self.params.coordinator_pk,
            Update(self.decision.sum_signature, update_sig, masked, LocalSeedDict(seed_dict)),
        )
        (body,) = seal(message, self.keys)
        return body

    def masked(self, model: Sequence[float], *, config: Any = None) -> MaskObject:
        """``model`` masked with a fresh seed (under another mask config if given)."""
        return mask_model(self.mask_seed(), list(model), config=config or self.params.mask_config)

    def random_mask(self) -> MaskObject:
        """A well-formed mask of the round that belongs to no updater."""
        return derive_mask(
            self.mask_seed(), config=self.params.mask_config, length=self.params.model_length
        )


class Fleet:
    """Simulated participants: signing keys drawn from a seeded ``random.Random``.

    Roles depend on the round, so :meth:`pick` scans the keys (drawing more as needed) for the
    first ``n`` with the wanted role in the given round. The same fleet and round give the same
    participants every time.
    """

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys: list[SigningKeyPair] = []

    def _key(self, index: int) -> SigningKeyPair:
        while len(self.keys) <= index:
            self.keys.append(SigningKeyPair.from_seed(self.rng.randbytes(32)))
        return self.keys[index]

    def pick(self, params: RoundParameters, role: Role, n: int) -> list[Participant]:
        found: list[Participant] = []
        index = 0
        while len(found) < n:
            if index > 10_000:
                raise AssertionError(f"no {n} participants with role {role.value}")
            keys = self._key(index)
            decision = choose_role(keys, params)
            if decision.role is role:
                # per-participant randomness, fixed by its key and the round
                rng = random.Random(keys.public + params.seed)
                found.append(Participant(keys, params, decision, rng.randbytes(32), rng))
            index += 1
        return found

    def summers(self, params: RoundParameters, n: int) -> list[Participant]:
        return self.pick(params, Role.SUM, n)

    def updaters(self, params: RoundParameters, n: int) -> list[Participant]:
        return self.pick(params, Role.UPDATE, n)


# -- talking to the coordinator --------------------------------------------------------------------


class Reply(NamedTuple):
    status: int
    reason: str


class Driver(Protocol):
    """How a test reaches the coordinator: through the engine or over HTTP."""

    async def send(self, body: bytes) -> Reply: ...

    async def params(self) -> RoundParameters | None: ...

    async def sums(self) -> dict[bytes, bytes] | None: ...

    async def seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None: ...


class EngineDriver:
    """Straight through :meth:`Engine.submit` and the engine's published dictionaries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def send(self, body: bytes) -> Reply:
        outcome = await self.engine.submit(body)
        return Reply(outcome.status, outcome.reason)

    async def params(self) -> RoundParameters | None:
        return self.engine.round_parameters()

    async def sums(self) -> dict[bytes, bytes] | None:
        return self.engine.sum_dict()

    async def seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        return await self.engine.seeds_for(summer_pk)


def _hex_dict(data: Mapping[str, str]) -> dict[bytes, bytes]:
    return {bytes.fromhex(k): bytes.fromhex(v) for k, v in data.items()}


class HttpDriver:
    """Over HTTP with an httpx client (usually on an ASGITransport)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, body: bytes) -> Reply:
        response = await self.client.post(
            "/message", content=body, headers={"content-type": OCTET_STREAM}
        )
        data = response.json()
        assert data["status"] == response.status_code
        return Reply(response.status_code, data["reason"])

    async def params(self) -> RoundParameters | None:
        response = await self.client.get("/params")
        if response.status_code == 204:
            return None
        response.raise_for_status()
        return RoundParameters.from_json_dict(response.json())

    async def sums(self) -> dict[bytes, bytes] | None:
        response = await self.client.get("/sums")
        if response.status_code == 204:
            return None
        response.raise_for_status()
        return _hex_dict(response.json())

    async def seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        response = await self.client.get("/seeds", params={"pk": summer_pk.hex()})
        if response.status_code == 204:
            return None
        response.raise_for_status()
        return _hex_dict(response.json())


async def send_all(driver: Driver, bodies: Iterable[bytes]) -> list[Reply]:
    return [await driver.send(body) for body in bodies]


def weighted_mean(
    models: Sequence[Sequence[float]], scalars: Sequence[float]
) -> npt.NDArray[np.float64]:
    """What the global model must be: the scalar-weighted mean of the accepted models."""
    return np.average(np.asarray(models, dtype=np.float64), axis=0, weights=scalars)


# -- playing a round -------------------------------------------------------------------------------


class RoundRun:
    """One round played against an engine: who takes part, what they sent, what must come out.

    Each step sends its messages and, with ``close=True``, moves the fake clock past the phase's
    time.min and ticks, asserting the phase that follows. :meth:`play` does all of it.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        driver: Driver,
        fleet: Fleet,
        *,
        summers: int = 2,
        updaters: int = 3,
    ) -> None:
        params = engine.round_parameters()
        assert params is not None, "tick the engine into a round first"
        assert engine.state.phase is Phase.SUM
        self.engine = engine
        self.clock = clock
        self.driver = driver
        self.params = params
        self.summers = fleet.summers(params, summers)
        self.updaters = fleet.updaters(params, updaters)
        self.models: list[list[float]] = []
        self.scalars: list[float] = []
        self.sum_dict: dict[bytes, bytes] = {}
        #: the model and scalar each updater sent last, accepted or not
        self.sent: dict[bytes, tuple[list[float], float]] = {}

    def include(self, participant: Participant) -> None:
        """Count ``participant``'s last update in the expected mean (e.g. a 503 that was kept)."""
        model, scalar = self.sent[participant.pk]
        self.models.append(model)
        self.scalars.append(scalar)

    async def close_phase(self, expected: Phase) -> None:
        """Let time.min of the current phase pass, tick, and check the phase that follows."""
        self.clock.advance(1.0)
        await self.engine.tick()
        assert self.engine.state.phase is expected, self.engine.snapshot()

    async def send_sums(
        self, who: Sequence[Participant] | None = None, *, close: bool = False
    ) -> list[Reply]:
        replies = [await self.driver.send(p.sum_body()) for p in who or self.summers]
        if close:
            await self.close_phase(Phase.UPDATE)
        return replies

    async def fetch_sum_dict(self) -> dict[bytes, bytes]:
        sums = await self.driver.sums()
        assert sums is not None, "no sum dict published"
        self.sum_dict = sums
        return sums

    def new_model(self, participant: Participant) -> tuple[list[float], float]:
        rng = participant.rng
        return [rng.uniform(-1, 1) for _ in range(self.params.model_length)], rng.choice(SCALARS)

    async def send_update(
        self, participant: Participant, *, max_message_size: int | None = None
    ) -> list[Reply]:
        """Send one updater's update; remember its model if the coordinator accepted it."""
        if not self.sum_dict:
            await self.fetch_sum_dict()
        model, scalar = self.new_model(participant)
        bodies = participant.update_bodies(
            model, self.sum_dict, scalar=scalar, max_message_size=max_message_size
        )
        self.sent[participant.pk] = (model, scalar)
        replies = await send_all(self.driver, bodies)
        if replies[-1].reason == "accepted":
            self.models.append(model)
            self.scalars.append(scalar)
        return replies

    async def send_updates(
        self,
        who: Sequence[Participant] | None = None,
        *,
        max_message_size: int | None = None,
        close: bool = False,
    ) -> list[Reply]:
        """The last reply of each updater."""
        replies = [
            (await self.send_update(p, max_message_size=max_message_size))[-1]
            for p in who or self.updaters
        ]
        if close:
            await self.close_phase(Phase.SUM2)
        return replies

    async def seeds_of(self, summer: Participant) -> dict[bytes, bytes]:
        seeds = await self.driver.seeds(summer.pk)
        assert seeds is not None, "no seeds published for this summer"
        return seeds

    async def send_sum2s(
        self, who: Sequence[Participant] | None = None, *, close: bool = False
    ) -> list[Reply]:
        replies = []
        for summer in who or self.summers:
            replies.append(await self.driver.send(summer.sum2_body(await self.seeds_of(summer))))
        if close:
            await self.close_phase(Phase.SUM)  # unmasked, and the next round started
        return replies

    def expected(self) -> npt.NDArray[np.float64]:
        return weighted_mean(self.models, self.scalars)

    async def play(self, *, max_message_size: int | None = None) -> npt.NDArray[np.float64]:
        """The whole round, every message accepted; returns the expected global model."""
        assert {r.reason for r in await self.send_sums(close=True)} == {"accepted"}
        replies = await self.send_updates(max_message_size=max_message_size, close=True)
        assert {r.reason for r in replies} == {"accepted"}
        assert {r.reason for r in await self.send_sum2s(close=True)} == {"accepted"}
        return self.expected()


def assert_model(values: Any, expected: npt.NDArray[np.float64]) -> None:
    """The global model equals the expected mean within :data:`TOLERANCE`."""
    actual = np.asarray(values, dtype=np.float64)
    assert actual.shape == expected.shape
    error = float(np.max(np.abs(actual - expected)))
    assert error < TOLERANCE, f"global model off by {error}"


# -- server-sent events over a streaming ASGI transport --------------------------------------------


class _AppStream(httpx.AsyncByteStream):
    def __init__(
        self, queue: asyncio.Queue[bytes | None], task: asyncio.Task[None], gone: asyncio.Event
    ) -> None:
        self._queue = queue
        self._task = task
        self._gone = gone

    async def __aiter__(self) -> Any:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._gone.set()  # the client disconnects: the app sees http.disconnect
        try:
            await asyncio.wait_for(self._task, 5)
        except TimeoutError:
            self._task.cancel()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Like httpx.ASGITransport, but hands out the body while the app still sends it.

    httpx's own transport waits for the whole response, which never ends for an event stream.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        started = asyncio.Event()
        gone = asyncio.Event()
        sent_body = False
        head: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                head.update(message)
                started.set()
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    queue.put_nowait(message["body"])
                if not message.get("more_body", False):
                    queue.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                queue.put_nowait(None)
                started.set()

        task = asyncio.create_task(run())
        await started.wait()
        if "status" not in head:
            await task  # the app failed before answering: raise its error
            raise AssertionError("the app sent no response")
        return httpx.Response(
            head["status"], headers=head.get("headers", []), stream=_AppStream(queue, task, gone)
        )


async def read_sse(lines: Any, kinds: set[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The next event (kind, data) from an ``aiter_lines()`` iterator, skipping comments.

    With ``kinds``, events of other kinds are skipped too.
    """
    kind, data = "", ""
    async for line in lines:
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and kind:
            if kinds is None or kind in kinds:
                return kind, json.loads(data)
            kind, data = "", ""
    raise AssertionError("the event stream ended")
