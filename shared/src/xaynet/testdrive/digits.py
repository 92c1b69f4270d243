"""``xaynet-test-drive --task digits``: the browser demo's devices, run natively.

The random models of the default task would wreck the accuracy of the global model when they
share rounds with the demo page's devices. With ``--task digits`` the participants are the
page's own :class:`~xaynet.browser.fleet.DeviceFleet` devices, over the SDK's
:class:`~xaynet.sdk.http.HttpTransport`: each holds a non-IID shard of the digits data, trains one
epoch of softmax regression from the newest global model and submits it, weighted by its number
of samples. The data comes from the coordinator (``GET /data/digits.json``, served when its
``[web]`` settings are enabled) or from a file (``--data``).

:class:`DigitsDrive` follows the coordinator's events as :class:`~.fleet.Fleet` does and keeps a
:class:`DigitsLedger`: per round the phases, the devices' roles, the accuracy and loss of the
global model on the held-out images and, with ``check``, whether the global model equals the
weighted mean of the updates the coordinator accepted from the devices (the fleet must then be
the only updaters).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from xaynet.browser import digits as digits_task
from xaynet.browser.fleet import FLEET_AGENT_SETTINGS, DeviceFleet
from xaynet.errors import ConfigError, DecodeError
from xaynet.participant.transport import GlobalModel, PostOutcome, Transport
from xaynet.round import RoundParameters
from xaynet.sdk.agent import CoordinatorUnreachable
from xaynet.sdk.http import ClientCert, HttpTransport
from xaynet.testdrive.fleet import reach_coordinator
from xaynet.testdrive.follow import Follower, check_run_options
from xaynet.testdrive.ledger import Ledger, RoundRecord
from xaynet.testdrive.models import as_masked
from xaynet.testdrive.transport import Gate, Traffic, http_client

__all__ = ["DATA_PATH", "DigitsConfig", "DigitsDrive", "DigitsLedger", "DigitsRound", "load_file"]

log = logging.getLogger("xaynet.testdrive")

#: Where a coordinator with ``[web]`` enabled serves the demo's data set.
DATA_PATH = "/data/digits.json"
#: How long a model check waits for answers to POSTs sent before the model was announced.
_INFLIGHT_GRACE = 5.0
#: Rounds whose per-device roles are kept (the counts stay).
_KEEP_ROUNDS = 8
_ROLE_VALUES = {"sum": "sum", "update": "update", "idle": "none"}


@dataclass(frozen=True, slots=True)
class DigitsConfig:
    """A run of the digits task (the CLI's options).

    ``data``: the data set file (``None``: ``GET /data/digits.json`` from the coordinator).
    ``seed``: the devices' non-secret randomness (SGD order, retry jitter); their keys are
    always fresh. ``check``: compare every global model with the weighted mean of the devices'
    accepted updates. The other fields mean what they mean in :class:`~.fleet.FleetConfig`.
    """

    url: str
    devices: int = 4
    rounds: int | None = None
    duration: float | None = None
    data: Path | None = None
    seed: int | None = None
    check: bool = False
    timeout: float = 30.0
    verify: bool | str = True
    client_cert: ClientCert | None = None
    give_up_after: int | None = None
    connections: int = 16
    coalesce: bool = True
    event_timeout: float = 15.0
    start_attempts: int = 3

    def __post_init__(self) -> None:
        check_run_options(self)
        if self.devices < 1:
            raise ConfigError("at least one device")


@dataclass
class DigitsRound(RoundRecord):
    """A round of :class:`~.ledger.RoundRecord` plus what the digits task adds."""

    #: the global model's accuracy and mean cross-entropy on the held-out images
    accuracy: float | None = None
    loss: float | None = None
    #: device number -> role value, to count each device once (``roles`` holds the counts)
    role_of: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "accuracy": self.accuracy, "loss": self.loss}


class DigitsLedger(Ledger):
    """A :class:`~.ledger.Ledger` of :class:`DigitsRound` records."""

    rounds: dict[int, DigitsRound]  # type: ignore[assignment]

    def round(self, round_id: int) -> DigitsRound:
        record = self.rounds.get(round_id)
        if record is None:
            record = self.rounds[round_id] = DigitsRound(round_id)
        return record

    @property
    def latest_model(self) -> DigitsRound | None:
        """The newest round whose global model was evaluated."""
        evaluated = [r for _, r in sorted(self.rounds.items()) if r.accuracy is not None]
        return evaluated[-1] if evaluated else None


def load_file(path: Path) -> digits_task.Dataset:
    """The data set from a ``digits.json`` file; :class:`ConfigError` says what is wrong."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--data {path}: cannot read it: {exc}") from None
    return _parse(text, f"--data {path}")


def _parse(text: str, source: str) -> digits_task.Dataset:
    try:
        return digits_task.parse_dataset(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not JSON: {exc}") from None
    except DecodeError as exc:
        raise ConfigError(f"{source}: not the digits data set: {exc}") from None


class _Observed:
    """The devices' transport, seen from the drive: round parameters and POSTs in flight."""

    def __init__(self, inner: Transport, on_post: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_post = on_post
        self.url = getattr(inner, "url", "the coordinator")
        #: round id -> its parameters, as the devices fetched them
        self.params: dict[int, RoundParameters] = {}
        self._posts: dict[int, float] = {}
        self._numbers = itertools.count()

    async def get_params(self, etag: str | None) -> tuple[RoundParameters | None, str | None]:
        params, new_etag = await self._inner.get_params(etag)
        if params is not None:
            self.params.setdefault(params.round_id, params)
            for old in [r for r in self.params if r < params.round_id - _KEEP_ROUNDS]:
                del self.params[old]
        return params, new_etag

    async def get_sums(self) -> dict[bytes, bytes] | None:
        return await self._inner.get_sums()

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        return await self._inner.get_seeds(summer_pk)

    async def get_model(self) -> GlobalModel | None:
        return await self._inner.get_model()

    async def post_message(self, body: bytes) -> PostOutcome:
        number = next(self._numbers)
        self._posts[number] = time.monotonic()
        self._on_post(len(body))
        try:
            return await self._inner.post_message(body)
        finally:
            del self._posts[number]

    def events(self) -> AsyncIterator[tuple[str, Any]]:
        return self._inner.events()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def settled(self, before: float, grace: float) -> None:
        """Wait (at most ``grace`` s) until every POST sent before ``before`` was answered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(t <= before for t in self._posts.values()) and loop.time() < deadline:
            await asyncio.sleep(0.02)


class DigitsDrive(Follower[DigitsRound]):
    """The devices of a digits run (see the module docstring)."""

    ledger: DigitsLedger

    def __init__(self, config: DigitsConfig) -> None:
        super().__init__(DigitsLedger(), config.rounds)
        self.config = config
        self.seed = (
            config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
        )
        self.traffic = Traffic()
        #: where the data comes from: the file, or the coordinator's URL of it
        self.data_source = str(config.data) if config.data is not None else config.url + DATA_PATH
        self.dataset: digits_task.Dataset | None = None
        #: task -> seconds per run ("train", "mask", "aggregate", "post"), from the devices
        self.timings: dict[str, list[float]] = collections.defaultdict(list)
        #: the latest report of each device
        self.devices: dict[int, dict[str, Any]] = {}
        self.fleet: DeviceFleet | None = None
        self._observed: _Observed | None = None

    def __repr__(self) -> str:
        return f"<DigitsDrive {self.config.devices} devices at {self.config.url}>"

    # -- running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> DigitsLedger:
        """Run until ``stop`` is set, the rounds are complete, the duration passed or an error.

        Raises :class:`CoordinatorUnreachable` (at start, or when a device gave up after
        ``give_up_after`` failures), :class:`ConfigError` (no data set, or rounds the digits
        model does not fit) and whatever else stopped a device.
        """
        config = self.config
        self._done = asyncio.Event()
        self._following = asyncio.Event()
        stop = stop if stop is not None else asyncio.Event()
        client = self._client = http_client(
            config.url,
            connections=min(config.connections, config.devices) + 1,  # + the event stream
            timeout=config.timeout,
            verify=config.verify,
            client_cert=config.client_cert,
            traffic=self.traffic,
        )
        try:
            if config.data is not None:  # a bad file is a usage error, whatever the coordinator
                self.dataset = load_file(config.data)
            await self._check_coordinator(client)
            if self.dataset is None:
                self.dataset = await self._load_data(client)
            transport = HttpTransport(
                config.url, client=client, rng=random.Random(f"http:{self.seed}")
            )
            gate = Gate(transport, slots=config.connections, coalesce=config.coalesce)
            self._observed = _Observed(gate, self._on_post)
            self.fleet = DeviceFleet(
                self._observed,
                self.dataset,
                self._on_report,
                random_bytes=os.urandom,  # keys and mask seeds stay secret, even here
                rng=random.Random(self.seed),
                # The page's devices hold shards 0-7 by default: take the other half.
                first_device=digits_task.SHARDS // 2,
                agent_settings=dataclasses.replace(
                    FLEET_AGENT_SETTINGS,
                    event_timeout=config.event_timeout,
                    give_up_after=config.give_up_after,
                ),
            )
            await self._follow(
                self.fleet.shared.view().events(),
                self._add_devices,
                stop,
                duration=config.duration,
                timeout=config.timeout,
            )
        finally:
            if self.started_at is not None:
                self.stopped_at = time.monotonic()
            await self._shutdown()
        if self.error is not None:
            raise self.error
        return self.ledger

    def _add_devices(self) -> None:
        assert self.fleet is not None
        for _ in range(self.config.devices):
            self.fleet.add_device()

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        if self._done is not None:
            self._done.set()

    async def _shutdown(self) -> None:
        await self._cancel_tasks()
        if self.fleet is not None:
            await self.fleet.aclose()  # closes the transport, and the client with it
        elif self._client is not None:
            await self._client.aclose()

    async def _check_coordinator(self, client: httpx.AsyncClient) -> None:
        config = self.config
        response = await reach_coordinator(client, config.url, config.start_attempts)
        if response.status_code == 200:
            length = response.json().get("model_length")
            if length != digits_task.MODEL_LENGTH:
                raise ConfigError(
                    f"the coordinator's rounds have models of {length} values, the digits task "
                    f"needs {digits_task.MODEL_LENGTH} ([model] length = "
                    f"{digits_task.MODEL_LENGTH} in its settings)"
                )

    async def _load_data(self, client: httpx.AsyncClient) -> digits_task.Dataset:
        source = self.data_source
        try:
            response = await client.get(DATA_PATH)
        except httpx.TransportError as exc:
            raise CoordinatorUnreachable(
                f"GET {source}: {type(exc).__name__}: {exc}".rstrip(": ")
            ) from None
        if response.status_code == 404:
            raise ConfigError(
                f"the coordinator serves no {DATA_PATH} (HTTP 404): enable its [web] settings, "
                "or give the data set with --data PATH (web_participant/data/digits.json)"
            )
        if response.status_code != 200:
            raise ConfigError(f"GET {source} answered HTTP {response.status_code}")
        return _parse(response.text, f"GET {source}")

    # -- what the devices report ---------------------------------------------------------------

    def _on_report(self, report: dict[str, Any]) -> None:
        kind = report.get("type")
        if kind == "device":
            self._on_device(report)
        elif kind == "timing":
            samples = self.timings[str(report["task"])]
            samples.append(float(report["seconds"]))
            del samples[:-1000]
        elif kind == "global_model":
            record = self.ledger.round(int(report["round_id"]))
            record.accuracy, record.loss = report["accuracy"], report["loss"]
        elif kind == "removed":
            self.devices.pop(int(report["number"]), None)

    def _on_post(self, size: int) -> None:
        # Counted for the coordinator's current round (the transport does not know the task's).
        if self.ledger.round_id is not None:
            record = self.ledger.round(self.ledger.round_id)
            record.posts += 1
            record.bytes_posted += size

    def _on_device(self, report: dict[str, Any]) -> None:
        number = int(report["number"])
        previous = self.devices.get(number)
        self.devices[number] = report
        round_id, role = report.get("round_id"), _ROLE_VALUES.get(report.get("role") or "")
        if isinstance(round_id, int):
            record = self.ledger.round(round_id)
            if role is not None and number not in record.role_of:
                record.role_of[number] = role
                record.roles[role] += 1
            # A device reports each accepted message at once, naming the task in its activity.
            accepted = int(report.get("accepted") or 0)
            before = int(previous.get("accepted") or 0) if previous is not None else 0
            task = str(report.get("activity", "")).removesuffix(" accepted")
            if accepted > before and task in ("sum", "update", "sum2"):
                record.accepted[task] += accepted - before
        error = report.get("error")
        if report.get("activity") == "stopped":
            # The device's agent ended: it gave up (give_up_after) or met an error.
            text = str(error or "stopped")
            name, _, detail = text.partition(": ")
            if name == CoordinatorUnreachable.__name__:
                self._fail(CoordinatorUnreachable(detail))
            elif name == ConfigError.__name__:
                self._fail(ConfigError(detail))
            else:
                self._fail(RuntimeError(f"device {number} stopped: {text}"))
        elif error or report.get("note"):
            # ``note``: why the device retries (the coordinator unreachable or busy)
            self.ledger.last_error = f"device {number}: {error or report['note']}"
            self.ledger.last_error_at = time.monotonic()
            self.retrying()

    # -- the coordinator's events -------------------------------------------------------------

    def _on_model(self, round_id: int, data: dict[str, Any]) -> None:
        self._spawn(self._evaluate(round_id, time.monotonic()))

    def _prune(self, round_id: int) -> None:
        for old, past in self.ledger.rounds.items():
            if old < round_id - _KEEP_ROUNDS:
                past.role_of.clear()

    async def _evaluate(self, round_id: int, announced: float) -> None:
        fleet, observed = self.fleet, self._observed
        assert fleet is not None
        assert observed is not None
        record = self.ledger.round(round_id)
        model = await self._fetch_model(fleet.shared.view(), round_id)
        if model is None:
            record.note = f"could not fetch the global model of round {round_id}"
            self._notify("model", record)
            return
        # An update accepted by the coordinator counts once its answer is back.
        await observed.settled(announced, _INFLIGHT_GRACE)
        fleet.on_global_model(model)  # evaluates it, unless a device did (reports accuracy)
        record.model_id = model.model_id or "initial"
        self._check(record, model, fleet, observed.params.get(round_id))
        self._model_done(record)

    def _check(
        self,
        record: DigitsRound,
        model: GlobalModel,
        fleet: DeviceFleet,
        params: RoundParameters | None,
    ) -> None:
        """Add up the devices' accepted updates; with ``check``, compare the global model."""
        accepted = [m for m in fleet.local_models(record.round_id) if m["accepted"]]
        if params is None:
            record.update_count = len(accepted)
            record.note = "the devices did not take part: not checked"
            return
        for local in accepted:
            values = as_masked(local["model"], params.mask_config.vect)
            record.add_update(float(local["weight"]), values)
        if not self.config.check:
            record.weighted_sum = None
        elif not record.complete:
            record.note = f"the fleet joined in the {record.seen_in} phase: not checked"
        elif not record.check(model.values, params.mask_config, float(digits_task.MAX_WEIGHT)):
            self.ledger.mismatches.append(record.round_id)
            log.error(
                "round %d: the global model does not verify: %s", record.round_id, record.note
            )
