"""The coordinator's storage interface: round state and round dictionaries.

Two backends implement it: ``memory`` (embedded, nothing survives the process) and ``redis``
(every key under one prefix; the operations that must be atomic are Lua scripts). The engine
never holds a list of updates: accepted masked models go to the *journal* and into the running
aggregate, and the aggregate is checkpointed from time to time; after a crash the checkpoint plus
the journal entries after it rebuild the aggregate exactly.

Every method is a coroutine. Byte strings are raw (public keys are 32 bytes, sealed seeds 80).
Storage failures raise :class:`StorageError`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "StorageError",
    "UpdateRejection",
    "VoteRejection",
    "Checkpoint",
    "MaskVote",
    "Storage",
]


class StorageError(Exception):
    """The storage backend failed (unreachable, timed out, corrupted data)."""


class UpdateRejection(enum.Enum):
    """Why :meth:`Storage.add_update` refused an update (nothing was written)."""

    #: the local seed dict does not have one entry per summer
    LENGTH_MISMATCH = "seed_dict_length"
    #: the local seed dict names a key that is not a summer of this round
    UNKNOWN_SUMMER = "unknown_summer"
    #: this updater's update was already accepted in this round
    ALREADY_SUBMITTED = "already_submitted"


class VoteRejection(enum.Enum):
    """Why :meth:`Storage.add_mask_vote` refused a vote (nothing was written)."""

    #: the sender is not a summer of this round
    UNKNOWN_SUMMER = "unknown_summer"
    #: this summer already voted
    ALREADY_SUBMITTED = "already_submitted"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The running aggregate of the first ``count`` accepted updates of a round.

    Invariant kept by the backends: ``checkpoint.count + len(journal) == accepted updates``
    (every accepted update is journaled once; a checkpoint drops the entries it covers).
    """

    round_id: int
    aggregate: bytes  # MaskObject.to_bytes() of the aggregate
    count: int  # number of masked models in it


@dataclass(frozen=True, slots=True)
class MaskVote:
    """A distinct aggregated mask and how many summers voted for it."""

    mask: bytes  # MaskObject.to_bytes()
    votes: int


class Storage(Protocol):
    """What the engine needs from a storage backend."""

    # -- lifecycle and health --------------------------------------------------------------------

    async def connect(self) -> None:
        """Open connections and load scripts. Raises StorageError when unreachable."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def ping(self) -> bool:
        """Whether the backend answers (readiness)."""
        ...

    # -- coordinator state -------------------------------------------------------------------------

    async def save_state(self, state: bytes) -> None:
        """Replace the persisted coordinator state (an opaque blob the engine encodes)."""
        ...

    async def load_state(self) -> bytes | None:
        """The persisted coordinator state, or None on a fresh start."""
        ...

    # -- round dictionaries ------------------------------------------------------------------------

    async def add_summer(self, summer_pk: bytes, ephemeral_pk: bytes) -> bool:
        """Insert into the sum dict if absent (atomic). False if ``summer_pk`` is already in it."""
        ...

    async def sum_dict(self) -> dict[bytes, bytes]:
        """The sum dict: summer pk -> ephemeral pk."""
        ...

    async def add_update(
        self, updater_pk: bytes, local_seed_dict: Mapping[bytes, bytes], journal_entry: bytes
    ) -> UpdateRejection | None:
        """Accept an update atomically, or refuse it and write nothing.

        Checks, in this order: the local seed dict has exactly as many entries as the sum dict
        (LENGTH_MISMATCH); each key is in the sum dict (UNKNOWN_SUMMER); the updater has not
        submitted yet (ALREADY_SUBMITTED). Then, in the same atomic step: records the updater,
        adds each sealed seed to its summer's column of the seed dict, and appends
        ``journal_entry`` (the masked model's bytes) to the journal.
        """
        ...

    async def seed_dict_column(self, summer_pk: bytes) -> dict[bytes, bytes]:
        """The seeds sealed to one summer: updater pk -> sealed seed (empty if none)."""
        ...

    async def update_count(self) -> int:
        """How many updates have been accepted in this round."""
        ...

    async def add_mask_vote(self, summer_pk: bytes, mask: bytes) -> VoteRejection | None:
        """Count one summer's vote for ``mask`` atomically, or refuse it and write nothing.

        The sender must be in the sum dict (UNKNOWN_SUMMER) and must not have voted
        (ALREADY_SUBMITTED). Each distinct mask is stored once (keyed by its SHA-256), however
        many votes it gets.
        """
        ...

    async def best_masks(self, limit: int = 2) -> list[MaskVote]:
        """Up to ``limit`` distinct masks, most votes first (ties in any order)."""
        ...

    async def distinct_masks(self) -> int:
        """How many distinct masks have been voted for."""
        ...

    async def delete_round(self) -> None:
        """Delete every round dictionary, the journal and the checkpoint (atomic)."""
        ...

    # -- running aggregate: journal and checkpoint ------------------------------------------------

    async def journal(self) -> list[bytes]:
        """The journal entries not covered by the checkpoint, oldest first."""
        ...

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` and drop the journal entries it newly covers, atomically.

        Those are the first ``checkpoint.count - previous.count`` entries (``previous.count`` is 0
        without an earlier checkpoint). The caller must not accept updates concurrently.
        """
        ...

    async def load_checkpoint(self) -> Checkpoint | None:
        """The last checkpoint of the current round, or None."""
        ...

    # -- global models ----------------------------------------------------------------------------

    async def set_latest_model_id(self, model_id: str) -> None:
        """Remember the id of the newest global model (in the model store)."""
        ...

    async def latest_model_id(self) -> str | None:
        """The id of the newest global model, or None."""
        ...
