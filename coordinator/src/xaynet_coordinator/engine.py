"""The PET engine: runs the phases of the rounds over a storage backend and a model store.

The engine owns the round: its keys and seed, the counting window of the current phase, the
running aggregate and the multipart buffers. Phase changes go through :func:`phase.next_phase`
only. Time comes from the ``clock`` it is given and the engine never sleeps: :meth:`tick`
advances the phases as far as ``clock()`` allows, and the ``run`` loop of the service (or a test
with a fake clock) calls it. Messages enter through :meth:`submit`.

Durability (Redis backend): the state is written at every transition before the new phase is
published; an update is journaled by the same atomic storage step that accepts it, before its
202; the aggregate is checkpointed every ``checkpoint_every`` updates. A restarted engine
resumes the phase it was in with everything it had acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from xaynet.crypto import EncryptKeyPair
from xaynet.errors import AggregationError, XaynetError
from xaynet.mask import Aggregation, MaskConfigPair, MaskObject
from xaynet.message import Message, Reassembler, ReassemblyError, Sum, Sum2, Update
from xaynet.round import INITIAL_ROUND_SEED, RoundParameters, next_round_seed
from xaynet_coordinator.events import EventBus
from xaynet_coordinator.ingest import RoundKeys, check_eligibility, open_request
from xaynet_coordinator.metrics import Metrics
from xaynet_coordinator.model_store import ModelStore, ModelStoreError, make_model_id
from xaynet_coordinator.outcome import Outcome
from xaynet_coordinator.phase import (
    MESSAGE_PHASE,
    Admission,
    CountWindow,
    Phase,
    PhaseEvent,
    WindowStatus,
    next_phase,
)
from xaynet_coordinator.settings import MultipartSettings, PetSettings, PhaseSettings
from xaynet_coordinator.state import CoordinatorState, StateDecodeError
from xaynet_coordinator.storage import (
    Checkpoint,
    Storage,
    StorageError,
    UpdateRejection,
    VoteRejection,
)

__all__ = ["Engine", "EngineConfig", "GlobalModel", "StartupError"]

log = logging.getLogger("xaynet.coordinator")

# Models of at least this many elements are added to the aggregate in a worker thread.
_THREAD_THRESHOLD = 100_000


class StartupError(Exception):
    """The engine cannot start from the stored state (e.g. its global model is missing)."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What the engine takes from the settings."""

    pet: PetSettings
    mask: MaskConfigPair
    model_length: int
    multipart: MultipartSettings
    checkpoint_every: int = 25
    #: seconds between storage checks while in Failure
    failure_retry: float = 5.0
    initial_model: npt.NDArray[np.float64] | None = None


@dataclass(frozen=True, slots=True)
class GlobalModel:
    """The newest global model: float64 values, the round that made it and its store id."""

    values: npt.NDArray[np.float64]
    round_id: int
    model_id: str | None


@dataclass(slots=True)
class _PhaseCounts:
    accepted: int = 0
    rejected: int = 0
    discarded: int = 0


@dataclass(slots=True)
class _Round:
    """What the engine keeps in memory about the current round."""

    aggregation: Aggregation | None = None
    sum_dict: dict[bytes, bytes] | None = None
    seeds_published: bool = False
    since_checkpoint: int = 0
    #: a storage call of an update failed midway: storage may hold what memory does not
    aggregate_stale: bool = False
    counts: dict[Phase, _PhaseCounts] = field(
        default_factory=lambda: {p: _PhaseCounts() for p in (Phase.SUM, Phase.UPDATE, Phase.SUM2)}
    )


class Engine:
    """Runs PET rounds. Create, ``await start()``, then call ``tick()`` and ``submit()``."""

    def __init__(
        self,
        config: EngineConfig,
        storage: Storage,
        model_store: ModelStore,
        *,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes] = os.urandom,
        events: EventBus | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.model_store = model_store
        self.clock = clock
        self.random_bytes = random_bytes
        self.events = events if events is not None else EventBus()
        self.metrics = metrics if metrics is not None else Metrics()
        self.state = CoordinatorState(
            round_id=0,
            phase=Phase.IDLE,
            phase_started_at=clock(),
            seed=INITIAL_ROUND_SEED,
            round_keys=None,
            params=None,
        )
        self.window: CountWindow | None = None
        self.round = _Round()
        self.global_model: GlobalModel | None = None
        self.last_failure: dict[str, Any] | None = None
        self._previous_keys: EncryptKeyPair | None = None
        self._update_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._reassembler = self._new_reassembler()
        self._last_failure_check = float("-inf")
        self.phase_deadline: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the stored state (resuming an open round) or start fresh."""
        await self.model_store.ensure()
        raw = await self.storage.load_state()
        if self.config.initial_model is not None:
            self.global_model = GlobalModel(self.config.initial_model, 0, None)
        await self._restore_model()
        if raw is None:
            log.info("no stored state: starting from round 1")
            self._set_phase(Phase.IDLE)
            return
        try:
            stored = CoordinatorState.from_bytes(raw)
        except StateDecodeError as exc:
            raise StartupError(str(exc)) from exc
        self.state = stored
        params = stored.params
        if params is not None and (
            params.mask_config != self.config.mask
            or params.model_length != self.config.model_length
        ):
            log.warning(
                "the mask config or model length changed since round %d: starting a new round",
                stored.round_id,
            )
            await self._enter(Phase.IDLE, persist=False)
            return
        if stored.phase in (Phase.SUM, Phase.UPDATE, Phase.SUM2, Phase.UNMASK) and params:
            await self._resume(stored)
        else:
            await self._enter(Phase.IDLE, persist=False)

    async def _restore_model(self) -> None:
        model_id = await self.storage.latest_model_id()
        if model_id is None:
            return
        try:
            data = await self.model_store.load(model_id)
        except ModelStoreError as exc:
            raise StartupError(
                f"the latest global model {model_id} is missing from the model store ({exc}); "
                "refusing to start so that participants do not restart from scratch"
            ) from exc
        # the size is checked first: frombuffer raises on a length that is no multiple of 8
        if len(data) % 8:
            raise StartupError(
                f"the latest global model {model_id} is corrupted ({len(data)} bytes is not a "
                "whole number of float64 values)"
            )
        if len(data) != 8 * self.config.model_length:
            # model.length was changed on purpose: the old model cannot serve the new one.
            log.warning(
                "the latest global model %s has %d values, model.length is now %d: not serving it",
                model_id,
                len(data) // 8,
                self.config.model_length,
            )
            return
        values = np.frombuffer(data, dtype="<f8").astype(np.float64)
        round_id = int(model_id.split("_", 1)[0])
        self.global_model = GlobalModel(values, round_id, model_id)

    async def _resume(self, stored: CoordinatorState) -> None:
        log.info("resuming round %d in phase %s", stored.round_id, stored.phase.value)
        self.round = _Round()
        if stored.phase is not Phase.SUM:
            self.round.sum_dict = await self.storage.sum_dict()
        if stored.phase in (Phase.SUM2, Phase.UNMASK):
            self.round.seeds_published = True
        if stored.phase in (Phase.UPDATE, Phase.SUM2, Phase.UNMASK):
            await self._rebuild_aggregate(stored.round_id)
        if stored.phase.takes_messages:
            self.window = self._new_window(stored.phase, stored.phase_started_at)
            self.window.accepted = await self._stored_count(stored.phase)
            self.round.counts[stored.phase].accepted = self.window.accepted
        # What earlier phases of the round accepted, for GET /state.
        if self.round.sum_dict is not None:
            self.round.counts[Phase.SUM].accepted = len(self.round.sum_dict)
        if stored.phase is not Phase.UPDATE and self.round.aggregation is not None:
            self.round.counts[Phase.UPDATE].accepted = self.round.aggregation.count
        self.metrics.set_round(stored.round_id, stored.phase)

    async def _rebuild_aggregate(self, round_id: int) -> None:
        aggregation = Aggregation(self.config.mask, self.config.model_length)
        checkpoint = await self.storage.load_checkpoint()
        if checkpoint is not None and checkpoint.round_id == round_id:
            aggregation.restore(MaskObject.from_bytes(checkpoint.aggregate), checkpoint.count)
        for entry in await self.storage.journal():
            aggregation.add(MaskObject.from_bytes(entry))
        self.round.aggregation = aggregation

    async def _stored_count(self, phase: Phase) -> int:
        if phase is Phase.SUM:
            return len(await self.storage.sum_dict())
        if phase is Phase.UPDATE:
            return await self.storage.update_count()
        votes = await self.storage.best_masks(limit=max(1, await self.storage.distinct_masks()))
        return sum(vote.votes for vote in votes)

    async def shutdown(self) -> None:
        """Stop taking messages. The stored state stays as it is, to be resumed."""
        if self.state.phase is not Phase.SHUTDOWN:
            if self.window is not None:
                self.window.close()
            self.state = self.state.with_phase(
                next_phase(self.state.phase, PhaseEvent.SHUTDOWN), self.clock()
            )
            self.metrics.set_round(self.state.round_id, Phase.SHUTDOWN)
            self.events.publish("phase", self.snapshot_phase())
            self._changed.set()

    # -- phases ----------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Advance the phases as far as the clock and the collected messages allow."""
        for _ in range(16):  # a bound so a bug cannot spin forever; one round takes 5 steps
            phase = self.state.phase
            if phase is Phase.SHUTDOWN:
                return
            try:
                advanced = await self._step(phase)
            except (StorageError, ModelStoreError, AggregationError, XaynetError) as exc:
                await self._fail(f"{phase.value}: {exc}")
                advanced = True
            if not advanced:
                return

    async def _step(self, phase: Phase) -> bool:
        now = self.clock()
        if phase is Phase.IDLE:
            await self._idle(now)
            return True
        if phase is Phase.UNMASK:
            await self._unmask()
            return True
        if phase is Phase.FAILURE:
            return await self._check_recovery(now)
        window = self.window
        if window is None:  # pragma: no cover - message phases always have a window
            raise AssertionError("message phase without a window")
        if phase is Phase.UPDATE and self.round.aggregate_stale:
            # Count an update that reached storage although its call failed before the window
            # decides; if storage still fails, the next update or tick tries again.
            with contextlib.suppress(StorageError):
                async with self._update_lock:
                    if self.round.aggregate_stale:
                        await self._resync_locked()
        status = window.status(now)
        if status is WindowStatus.OPEN:
            if now >= window.started_at + window.time_max:
                window.close()  # stop admitting; in-flight messages decide the outcome
            return False
        window.close()
        if status is WindowStatus.TIMEOUT:
            await self._fail(
                f"{phase.value} phase timed out with {window.accepted} of at least "
                f"{window.count_min} messages"
            )
            return True
        await self._complete(phase)
        return True

    async def _idle(self, now: float) -> None:
        pet = self.config.pet
        round_id = self.state.round_id + 1
        await self.storage.delete_round()
        self._reassembler.clear()
        keys = EncryptKeyPair.from_seed(self.random_bytes(32))
        seed = next_round_seed(
            self.state.seed, keys.secret, pet.sum.probability, pet.update.probability
        )
        params = RoundParameters(
            round_id=round_id,
            coordinator_pk=keys.public,
            sum_probability=pet.sum.probability,
            update_probability=pet.update.probability,
            seed=seed,
            mask_config=self.config.mask,
            model_length=self.config.model_length,
        )
        if self.state.round_keys is not None:
            self._previous_keys = self.state.round_keys
        new_phase = next_phase(Phase.IDLE, PhaseEvent.ROUND_READY)
        state = CoordinatorState(
            round_id=round_id,
            phase=new_phase,
            phase_started_at=now,
            seed=seed,
            round_keys=keys,
            params=params,
        )
        await self.storage.save_state(state.to_bytes())
        self.state = state
        self.round = _Round()
        self.window = self._new_window(new_phase, now)
        self.metrics.set_round(round_id, new_phase)
        log.info("round %d started", round_id)
        self.events.publish("round", {"round_id": round_id})
        self.events.publish("phase", self.snapshot_phase())

    async def _complete(self, phase: Phase) -> None:
        """The window of a message phase closed with enough messages."""
        window = self.window
        assert window is not None
        self.metrics.phase_finished(phase, self.clock() - window.started_at)
        if phase is Phase.SUM:
            sum_dict = await self.storage.sum_dict()
            if not sum_dict:
                raise StorageError("the sum dict is empty after the sum phase")
            self.round.sum_dict = sum_dict
            self.round.aggregation = Aggregation(self.config.mask, self.config.model_length)
        elif phase is Phase.UPDATE:
            async with self._update_lock:
                if self.round.aggregate_stale:
                    await self._resync_locked()
                await self._checkpoint_locked()
            self.round.seeds_published = True
        self._reassembler.clear()
        await self._enter(next_phase(phase, PhaseEvent.COMPLETE))

    async def _unmask(self) -> None:
        aggregation = self.round.aggregation
        if aggregation is None or aggregation.count == 0:
            raise AggregationError("no_model", "no masked model was aggregated")
        self.metrics.distinct_masks.set(await self.storage.distinct_masks())
        best = await self.storage.best_masks(limit=2)
        if not best:
            raise AggregationError("no_model", "no summer sent an aggregated mask")
        if len(best) == 2 and best[0].votes == best[1].votes:
            raise AggregationError(
                "ambiguous_masks",
                f"ambiguous masks: the two most voted masks both have {best[0].votes} votes",
            )
        mask = MaskObject.from_bytes(best[0].mask)
        values = await anyio.to_thread.run_sync(aggregation.unmask_array, mask)
        round_id, seed = self.state.round_id, self.state.seed
        model_id = make_model_id(round_id, seed)
        data = values.astype("<f8").tobytes()
        if not await self.model_store.exists(model_id):
            await self.model_store.save(model_id, data)
        await self.storage.set_latest_model_id(model_id)
        self.global_model = GlobalModel(values, round_id, model_id)
        self.metrics.phase_finished(Phase.UNMASK, self.clock() - self.state.phase_started_at)
        log.info("round %d: global model %s from %d updates", round_id, model_id, aggregation.count)
        self.events.publish("model", {"round_id": round_id, "model_id": model_id})
        self.round.sum_dict = None
        self.round.seeds_published = False
        await self._enter(next_phase(Phase.UNMASK, PhaseEvent.COMPLETE))

    async def _fail(self, reason: str) -> None:
        log.warning("round %d failed: %s", self.state.round_id, reason)
        phase = self.state.phase
        # Kept until the next failure: recovery is quick, so /state would rarely show it.
        self.last_failure = {
            "round_id": self.state.round_id,
            "phase": phase.value,
            "reason": reason,
            "at": self.clock(),
        }
        if self.window is not None:
            self.window.close()
        self.metrics.round_failed(phase)
        self.round.sum_dict = None
        self.round.seeds_published = False
        self._reassembler.clear()
        failure = phase if phase is Phase.FAILURE else next_phase(phase, PhaseEvent.ERROR)
        self.state = self.state.with_phase(failure, self.clock(), failure=reason)
        self.window = None
        self._last_failure_check = float("-inf")
        self.metrics.set_round(self.state.round_id, Phase.FAILURE)
        self.events.publish("phase", self.snapshot_phase())
        # So that a restart does not resume the failed round; best effort, since the failure
        # may be the storage itself.
        with contextlib.suppress(StorageError):
            await self._persist()

    async def _check_recovery(self, now: float) -> bool:
        if now - self._last_failure_check < self.config.failure_retry:
            return False
        self._last_failure_check = now
        if not (await self.storage.ping() and await self.model_store.ready()):
            log.warning("storage or model store still unavailable; retrying")
            return False
        await self._enter(next_phase(Phase.FAILURE, PhaseEvent.RECOVERED))
        return True

    async def _enter(self, phase: Phase, *, persist: bool = True) -> None:
        """Move to ``phase``: saved first, then visible (messages, API, events)."""
        now = self.clock()
        state = self.state.with_phase(phase, now)
        if persist:
            await self.storage.save_state(state.to_bytes())
        self.state = state
        self.window = self._new_window(phase, now) if phase.takes_messages else None
        self.metrics.set_round(self.state.round_id, phase)
        self.events.publish("phase", self.snapshot_phase())

    def _set_phase(self, phase: Phase) -> None:
        self.state = self.state.with_phase(phase, self.clock())

    async def _persist(self) -> None:
        await self.storage.save_state(self.state.to_bytes())

    def _new_window(self, phase: Phase, started_at: float) -> CountWindow:
        settings = self._phase_settings(phase)
        return CountWindow(
            count_min=settings.count.min,
            count_max=settings.count.max,
            time_min=settings.time.min,
            time_max=settings.time.max,
            started_at=started_at,
        )

    def _phase_settings(self, phase: Phase) -> PhaseSettings:
        pet = self.config.pet
        return {Phase.SUM: pet.sum, Phase.UPDATE: pet.update, Phase.SUM2: pet.sum2}[phase]

    def _new_reassembler(self) -> Reassembler:
        limits = self.config.multipart
        return Reassembler(
            max_bytes_per_participant=limits.max_bytes_per_participant,
            max_messages_per_participant=limits.max_messages_per_participant,
            max_chunks_per_message=limits.max_chunks_per_message,
            max_total_bytes=limits.max_total_bytes,
        )

    def deadline(self) -> float | None:
        """When :meth:`tick` should run next without a message arriving (None: no deadline)."""
        phase = self.state.phase
        if phase is Phase.FAILURE:
            return self._last_failure_check + self.config.failure_retry
        if self.window is not None:
            return self.window.deadline(self.clock())
        return None

    async def wait_for_change(self, timeout: float | None) -> None:
        """Sleep until a message was decided or ``timeout`` seconds passed (the run loop)."""
        self._changed.clear()
        with anyio.move_on_after(timeout):
            await self._changed.wait()

    # -- messages ----------------------------------------------------------------------------------

    async def submit(self, body: bytes) -> Outcome:
        """Process one ``POST /message`` body and say what happened."""
        outcome = await self._submit(body)
        phase = self.state.phase
        self.metrics.message(phase, outcome, len(body))
        return outcome

    async def _submit(self, body: bytes) -> Outcome:
        state = self.state
        if state.phase is Phase.SHUTDOWN:
            return Outcome("shutting_down")
        if not state.phase.takes_messages or state.round_keys is None or state.params is None:
            return Outcome("not_accepting", f"the coordinator is in the {state.phase.value} phase")
        keys = RoundKeys(state.round_keys, self._previous_keys)
        opened = await anyio.to_thread.run_sync(open_request, body, keys, state.phase)
        if isinstance(opened, Outcome):
            return opened
        if self.state.round_id != state.round_id or self.state.phase is not state.phase:
            return Outcome("wrong_phase", "the phase ended while the message was being opened")
        message: Message | None = opened
        if opened.is_multipart:
            try:
                message = self._reassembler.add(opened)
            except ReassemblyError as exc:
                reason = "too_large" if exc.reason in _SIZE_REASONS else "multipart_invalid"
                return Outcome(reason, str(exc))
            except XaynetError as exc:
                return Outcome("malformed", str(exc))
            if message is None:
                return Outcome("chunk_buffered")
        assert message is not None
        not_eligible = await anyio.to_thread.run_sync(check_eligibility, message, state.params)
        if not_eligible is not None:
            return not_eligible
        return await self._handle(message, state)

    async def _handle(self, message: Message, state: CoordinatorState) -> Outcome:
        window = self.window
        if (
            window is None
            or self.state.round_id != state.round_id
            or MESSAGE_PHASE[message.tag] is not self.state.phase
        ):
            return Outcome("wrong_phase", "the phase ended while the message was being checked")
        admission = window.admit()
        if admission is Admission.FULL:
            self._count(state.phase, "discarded")
            return Outcome("phase_full")
        if admission is Admission.CLOSED:
            self._count(state.phase, "discarded")
            return Outcome("phase_closing")
        accepted = False
        try:
            outcome = await self._apply(message)
            accepted = outcome.reason == "accepted"
            return outcome
        except StorageError as exc:
            log.error("storage failed while handling a message: %s", exc)
            return Outcome("storage_unavailable", str(exc))
        finally:
            window.finish(accepted=accepted)
            self._count(state.phase, "accepted" if accepted else "rejected")
            self._changed.set()

    def _count(self, phase: Phase, kind: str) -> None:
        counts = self.round.counts[phase]
        setattr(counts, kind, getattr(counts, kind) + 1)

    async def _apply(self, message: Message) -> Outcome:
        payload = message.payload
        pk = message.participant_pk
        if isinstance(payload, Sum):
            if await self.storage.add_summer(pk, payload.ephm_pk):
                return Outcome("accepted")
            return Outcome("already_submitted", "this summer is already in the sum dict")
        if isinstance(payload, Update):
            return await self._apply_update(pk, payload)
        if isinstance(payload, Sum2):
            return await self._apply_sum2(pk, payload)
        return Outcome("malformed", "unexpected payload")  # pragma: no cover

    async def _apply_update(self, pk: bytes, update: Update) -> Outcome:
        masked = update.masked_model
        async with self._update_lock:
            if self.round.aggregate_stale:
                await self._resync_locked()
            aggregation = self.round.aggregation
            assert aggregation is not None
            try:
                aggregation.validate(masked)
            except AggregationError as exc:
                return Outcome("invalid_masked_model", str(exc))
            try:
                rejection = await self.storage.add_update(
                    pk, dict(update.local_seed_dict.items()), masked.to_bytes()
                )
            except StorageError:
                # The script may have run before the connection failed.
                self.round.aggregate_stale = True
                raise
            if rejection is not None:
                return _UPDATE_REJECTIONS[rejection]
            # Accepted and journaled: from here on it counts, even across a crash.
            if len(masked) >= _THREAD_THRESHOLD:
                await anyio.to_thread.run_sync(aggregation.add, masked)
            else:
                aggregation.add(masked)
            self.round.since_checkpoint += 1
            if self.round.since_checkpoint >= self.config.checkpoint_every:
                await self._checkpoint_locked()
        return Outcome("accepted")

    async def _apply_sum2(self, pk: bytes, sum2: Sum2) -> Outcome:
        probe = Aggregation(self.config.mask, self.config.model_length)
        try:
            probe.validate(sum2.model_mask)
        except AggregationError as exc:
            return Outcome("invalid_mask", str(exc))
        rejection = await self.storage.add_mask_vote(pk, sum2.model_mask.to_bytes())
        if rejection is VoteRejection.UNKNOWN_SUMMER:
            return Outcome("unknown_summer", "only summers of this round vote for a mask")
        if rejection is VoteRejection.ALREADY_SUBMITTED:
            return Outcome("already_submitted", "this summer already sent its mask")
        return Outcome("accepted")

    async def _resync_locked(self) -> None:
        """Rebuild the aggregate and the accepted count from storage (hold the update lock).

        After a failed storage call of an update, storage (checkpoint + journal) is the truth: the
        update may have been written, and then it counts although its sender got a 503.
        """
        await self._rebuild_aggregate(self.state.round_id)
        self.round.aggregate_stale = False
        if self.window is not None and self.round.aggregation is not None:
            self.window.accepted = self.round.aggregation.count

    async def _checkpoint_locked(self) -> None:
        aggregation = self.round.aggregation
        if aggregation is None or aggregation.count == 0:
            return
        await self.storage.save_checkpoint(
            Checkpoint(self.state.round_id, aggregation.result().to_bytes(), aggregation.count)
        )
        self.round.since_checkpoint = 0

    # -- what the API publishes ------------------------------------------------------------------

    def round_parameters(self) -> RoundParameters | None:
        return self.state.params

    def sum_dict(self) -> dict[bytes, bytes] | None:
        """The sum dict once the Sum phase is over (Update and Sum2), else None."""
        if self.state.phase in (Phase.UPDATE, Phase.SUM2):
            return self.round.sum_dict
        return None

    async def seeds_for(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        """The seeds sealed to one summer during Sum2, else None."""
        if self.state.phase is not Phase.SUM2 or not self.round.seeds_published:
            return None
        column = await self.storage.seed_dict_column(summer_pk)
        return column or None

    def snapshot_phase(self) -> dict[str, Any]:
        return {
            "round_id": self.state.round_id,
            "phase": self.state.phase.value,
            "since": self.state.phase_started_at,
        }

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /state`` shows: phase, round, deadlines, per-phase counts."""
        window = self.window
        deadlines = None
        if window is not None:
            deadlines = {
                "earliest_end": window.started_at + window.time_min,
                "latest_end": window.started_at + window.time_max,
            }
        counts = {
            phase.value: {
                "accepted": c.accepted,
                "rejected": c.rejected,
                "discarded": c.discarded,
            }
            for phase, c in self.round.counts.items()
        }
        model = self.global_model
        return {
            **self.snapshot_phase(),
            "now": self.clock(),
            "deadlines": deadlines,
            "window": window.counts() if window is not None else None,
            "counts": counts,
            "failure": self.state.failure,
            "last_failure": self.last_failure,
            "updates_aggregated": self.round.aggregation.count if self.round.aggregation else 0,
            "summers": len(self.round.sum_dict) if self.round.sum_dict else None,
            "global_model": {"round_id": model.round_id, "model_id": model.model_id}
            if model is not None
            else None,
            "multipart": {
                "buffered_bytes": self._reassembler.buffered_bytes,
                "partial_messages": self._reassembler.partial_messages,
            },
        }


_SIZE_REASONS = {"participant_bytes", "total_bytes", "too_many_chunks", "participant_messages"}

_UPDATE_REJECTIONS = {
    UpdateRejection.LENGTH_MISMATCH: Outcome("seed_dict_length"),
    UpdateRejection.UNKNOWN_SUMMER: Outcome("unknown_summer", "the seed dict names a non-summer"),
    UpdateRejection.ALREADY_SUBMITTED: Outcome("already_submitted", "this updater already sent"),
}
