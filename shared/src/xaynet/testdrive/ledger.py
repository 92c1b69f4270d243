"""What happened in each round, as seen by the fleet: phases, roles, messages, bytes, the check.

:class:`Ledger` keeps one :class:`RoundRecord` per round id. The fleet feeds it the coordinator's
events (phase changes with the coordinator's timestamps, new global models) and its
participants' SDK events; the display and the final report read it.

The check of a round's global model uses the updates the coordinator **accepted** (the SDK's
``MessageAccepted`` events): their weighted sum is accumulated as they arrive, and the global
model must equal it divided by the sum of the weights, within :func:`~.models.tolerance`.

:class:`ModelDump` writes what ``--dump-models DIR`` promises: per round a directory
``round-<id>`` with every submitted local model as ``p<index>.npy`` (float64, or int64 for
integer data types), the global model as ``global.npy`` and ``manifest.json``::

    {"round_id": 3, "model_length": 10, "data_type": "F32", "max_weight": 100.0,
     "global_model": "global.npy", "model_id": "3_...", "verified": true, ...,
     "updates": [{"participant": 7, "public_key": "ab..", "weight": 42.0,
                  "file": "p00007.npy", "status": "accepted"}, ...]}

so that anyone can recompute the expected global model: the weighted mean of the files whose
status is ``accepted``.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xaynet.mask.config import MaskConfigPair
from xaynet.testdrive.models import Vector, tolerance

__all__ = ["RoundRecord", "Ledger", "ModelDump", "Submission", "MESSAGE_PHASES"]

#: The phases of a round, in order.
MESSAGE_PHASES = ("sum", "update", "sum2", "unmask")
# Phases in which the fleet, seeing a round for the first time, still sees all of its updates.
_FROM_THE_START = frozenset({"start", "idle", "sum"})


@dataclass
class Submission:
    """A local model handed to the SDK for a round's Update task."""

    participant: int
    public_key: str
    weight: float
    status: str = "submitted"
    file: str | None = None


@dataclass
class RoundRecord:
    """One round. Times are the coordinator's clock (seconds)."""

    round_id: int
    #: the phase in which the fleet first saw the round ("start": from its first event)
    seen_in: str | None = None
    #: phase -> when it began
    phases: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    roles: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    accepted: collections.Counter[str] = field(default_factory=collections.Counter)
    #: task -> (first, last) acceptance time (time.time(), this machine's clock)
    accepted_between: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: "task: reason" -> count, for messages the coordinator refused
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    abandoned: collections.Counter[str] = field(default_factory=collections.Counter)
    #: "task: reason" -> count, for tasks that failed (e.g. seeds that do not decrypt)
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    #: task -> sealed bytes of the accepted messages (chunks included)
    message_bytes: collections.Counter[str] = field(default_factory=collections.Counter)
    #: POST /message bodies sent for this round, answered or not, and their bytes
    posts: int = 0
    bytes_posted: int = 0
    retries: int = 0
    #: participant CPU seconds per compute step ("role", "sum", "update", "sum2")
    cpu: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    submissions: dict[int, Submission] = field(default_factory=dict)
    # the weighted sum of the accepted updates
    update_count: int = 0
    weight_sum: float = 0.0
    max_abs: float = 0.0
    weighted_sum: Vector | None = None
    # the global model and its check
    model_id: str | None = None
    verified: bool | None = None
    max_error: float | None = None
    tolerance: float | None = None
    note: str = ""

    @property
    def complete(self) -> bool:
        """Whether the fleet saw the round before its Update phase (so it saw every update)."""
        return self.seen_in in _FROM_THE_START

    @property
    def has_model(self) -> bool:
        """Whether the round's global model arrived."""
        return self.model_id is not None

    @property
    def phase(self) -> str | None:
        """The latest phase seen."""
        if not self.phases:
            return None
        return max(self.phases.items(), key=lambda item: item[1])[0]

    def durations(self) -> dict[str, float]:
        """Seconds spent in each phase of :data:`MESSAGE_PHASES` that has ended."""
        ordered = sorted(self.phases.items(), key=lambda item: item[1])
        result: dict[str, float] = {}
        for (phase, start), (_, end) in itertools.pairwise(ordered):
            if phase in MESSAGE_PHASES:
                result[phase] = end - start
        return result

    @property
    def duration(self) -> float | None:
        """From the start of Sum to the end of the round (Idle or Failure), if both were seen."""
        start = self.phases.get("sum")
        end = self.phases.get("idle", self.phases.get("failure"))
        if start is None or end is None or end < start:
            return None
        return end - start

    def accepted_at(self, task: str, when: float) -> None:
        first, _ = self.accepted_between.get(task, (when, when))
        self.accepted_between[task] = (first, when)

    def add_update(self, weight: float, model: Any) -> None:
        values = np.asarray(model, dtype=np.float64)
        if self.weighted_sum is None:
            self.weighted_sum = np.zeros(values.shape, dtype=np.float64)
        self.weighted_sum += weight * values
        self.weight_sum += weight
        self.update_count += 1
        if values.size:
            self.max_abs = max(self.max_abs, float(np.max(np.abs(values))))

    def expected_model(self) -> Vector | None:
        if self.weighted_sum is None or self.weight_sum <= 0:
            return None
        result: Vector = self.weighted_sum / self.weight_sum
        return result

    def check(self, values: Any, config: MaskConfigPair, max_weight: float) -> bool:
        """Compare the global model with the weighted mean of the accepted updates."""
        expected = self.expected_model()
        got = np.asarray(values, dtype=np.float64)
        if expected is None:
            self.verified = False
            self.note = "no accepted update known to the fleet"
            return False
        if got.shape != expected.shape:
            self.verified = False
            self.note = f"the global model has {got.size} values, the updates {expected.size}"
            return False
        bound = tolerance(
            count=self.update_count,
            scalar_sum=self.weight_sum / max_weight,
            max_abs=self.max_abs,
            vect=config.vect,
            unit=config.unit,
        )
        error = float(np.max(np.abs(got - expected))) if got.size else 0.0
        self.max_error, self.tolerance = error, bound
        self.verified = bool(error <= bound)
        if not self.verified:
            self.note = (
                f"max error {error:.3g} > tolerance {bound:.3g} over {self.update_count} "
                "accepted updates (updates the fleet did not see accepted, or a wrong mean)"
            )
        # The sum is no longer needed: free it (d floats per round add up over long runs).
        self.weighted_sum = None
        return self.verified

    def to_json(self) -> dict[str, Any]:
        """The record for reports (``--json``)."""
        return {
            "round_id": self.round_id,
            "seen_in": self.seen_in,
            "complete": self.complete,
            "phases": dict(self.phases),
            "durations": self.durations(),
            "duration": self.duration,
            "failure": self.failure,
            "roles": dict(self.roles),
            "dropped": dict(self.dropped),
            "accepted": dict(self.accepted),
            "accepted_between": {k: list(v) for k, v in self.accepted_between.items()},
            "rejected": dict(self.rejected),
            "abandoned": dict(self.abandoned),
            "failed": dict(self.failed),
            "message_bytes": dict(self.message_bytes),
            "posts": self.posts,
            "bytes_posted": self.bytes_posted,
            "retries": self.retries,
            "cpu": {step: _stats(times) for step, times in self.cpu.items()},
            "updates": self.update_count,
            "model_id": self.model_id,
            "verified": self.verified,
            "max_error": self.max_error,
            "tolerance": self.tolerance,
            "note": self.note,
        }


def _stats(times: list[float]) -> dict[str, float]:
    if not times:
        return {"count": 0, "total": 0.0, "mean": 0.0, "max": 0.0}
    total = math.fsum(times)
    return {"count": len(times), "total": total, "mean": total / len(times), "max": max(times)}


class Ledger:
    """Every round seen, by round id, and what the coordinator said last."""

    def __init__(self) -> None:
        self.rounds: dict[int, RoundRecord] = {}
        #: the coordinator's current round and phase, from its events
        self.round_id: int | None = None
        self.phase: str | None = None
        #: rounds whose global model was checked and failed
        self.mismatches: list[int] = []
        #: the last failure a participant retried after, and when (time.monotonic())
        self.last_error = ""
        self.last_error_at: float | None = None

    def round(self, round_id: int) -> RoundRecord:
        record = self.rounds.get(round_id)
        if record is None:
            record = self.rounds[round_id] = RoundRecord(round_id)
        return record

    def coordinator_phase(self, round_id: int, phase: str, since: float | None) -> RoundRecord:
        record = self.round(round_id)
        if record.seen_in is None:
            record.seen_in = phase
        if since is not None and phase not in record.phases:
            record.phases[phase] = since
        if self.round_id is None or round_id >= self.round_id:
            self.round_id, self.phase = round_id, phase
        return record

    def round_announced(self, round_id: int) -> RoundRecord:
        record = self.round(round_id)
        if record.seen_in is None:
            record.seen_in = "start"
        return record

    @property
    def completed(self) -> list[RoundRecord]:
        """Rounds seen from their start whose global model arrived, oldest first."""
        return [r for _, r in sorted(self.rounds.items()) if r.complete and r.has_model]

    @property
    def failed(self) -> list[RoundRecord]:
        return [r for _, r in sorted(self.rounds.items()) if r.failure is not None]

    def totals(self) -> dict[str, Any]:
        rounds = list(self.rounds.values())
        return {
            "rounds_completed": len(self.completed),
            "rounds_verified": sum(1 for r in rounds if r.verified),
            "rounds_failed": len(self.failed),
            "mismatches": list(self.mismatches),
            "bytes_posted": sum(r.bytes_posted for r in rounds),
            "posts": sum(r.posts for r in rounds),
        }


class ModelDump:
    """Writes the local and global models of each round (see the module docstring)."""

    def __init__(self, directory: Path, *, max_weight: float) -> None:
        self.directory = Path(directory)
        self.max_weight = max_weight
        self.directory.mkdir(parents=True, exist_ok=True)
        self._params: dict[int, dict[str, Any]] = {}
        self._written: set[int] = set()

    def round_dir(self, round_id: int) -> Path:
        return self.directory / f"round-{round_id:06d}"

    def submitted(
        self, record: RoundRecord, submission: Submission, model: Any, params: dict[str, Any]
    ) -> None:
        path = self.round_dir(record.round_id)
        path.mkdir(parents=True, exist_ok=True)
        name = f"p{submission.participant:05d}.npy"
        np.save(path / name, np.asarray(model), allow_pickle=False)
        submission.file = name
        self._params.setdefault(record.round_id, params)

    def finish(self, record: RoundRecord, global_model: Any | None) -> None:
        """Write the round's manifest (and the global model, if any); again if called again."""
        if not record.submissions and global_model is None:
            return
        path = self.round_dir(record.round_id)
        path.mkdir(parents=True, exist_ok=True)
        if global_model is not None:
            np.save(path / "global.npy", np.asarray(global_model, dtype=np.float64))
        manifest = {
            "round_id": record.round_id,
            **self._params.get(record.round_id, {}),
            "max_weight": self.max_weight,
            "complete": record.complete,
            "global_model": "global.npy" if (path / "global.npy").exists() else None,
            "model_id": record.model_id,
            "verified": record.verified,
            "max_error": record.max_error,
            "tolerance": record.tolerance,
            "failure": record.failure,
            "updates": [
                {
                    "participant": s.participant,
                    "public_key": s.public_key,
                    "weight": s.weight,
                    "file": s.file,
                    "status": s.status,
                }
                for _, s in sorted(record.submissions.items())
            ],
        }
        tmp = path / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path / "manifest.json")
        self._written.add(record.round_id)

    def finish_all(self, ledger: Ledger) -> None:
        """At the end of a run: manifests for the rounds still open."""
        for round_id, record in sorted(ledger.rounds.items()):
            if record.submissions and round_id not in self._written:
                self.finish(record, None)
