"""The embedded storage backend: plain dicts in the coordinator process.

Nothing survives the process. Every method runs to completion without awaiting, so on one event
loop each call is atomic, exactly like a Lua script in the Redis backend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from xaynet_coordinator.storage.base import (
    Checkpoint,
    MaskVote,
    Storage,
    StorageError,
    UpdateRejection,
    VoteRejection,
)

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """In-process :class:`~xaynet_coordinator.storage.base.Storage`."""

    def __init__(self) -> None:
        self._state: bytes | None = None
        self._latest_model_id: str | None = None
        self._reset_round()

    def _reset_round(self) -> None:
        self._sum_dict: dict[bytes, bytes] = {}
        self._update_participants: set[bytes] = set()
        self._seeds: dict[bytes, dict[bytes, bytes]] = {}
        self._mask_submitted: set[bytes] = set()
        # one copy per distinct mask, keyed by its digest, as in the Redis backend
        self._masks: dict[bytes, bytes] = {}
        self._mask_votes: dict[bytes, int] = {}
        self._journal: list[bytes] = []
        self._checkpoint: Checkpoint | None = None

    # -- lifecycle and health --------------------------------------------------------------------

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    # -- coordinator state -----------------------------------------------------------------------

    async def save_state(self, state: bytes) -> None:
        self._state = bytes(state)

    async def load_state(self) -> bytes | None:
        return self._state

    # -- round dictionaries ----------------------------------------------------------------------

    async def add_summer(self, summer_pk: bytes, ephemeral_pk: bytes) -> bool:
        if summer_pk in self._sum_dict:
            return False
        self._sum_dict[bytes(summer_pk)] = bytes(ephemeral_pk)
        return True

    async def sum_dict(self) -> dict[bytes, bytes]:
        return dict(self._sum_dict)

    async def add_update(
        self, updater_pk: bytes, local_seed_dict: Mapping[bytes, bytes], journal_entry: bytes
    ) -> UpdateRejection | None:
        if len(local_seed_dict) != len(self._sum_dict):
            return UpdateRejection.LENGTH_MISMATCH
        if any(summer_pk not in self._sum_dict for summer_pk in local_seed_dict):
            return UpdateRejection.UNKNOWN_SUMMER
        if updater_pk in self._update_participants:
            return UpdateRejection.ALREADY_SUBMITTED
        updater_pk = bytes(updater_pk)
        self._update_participants.add(updater_pk)
        for summer_pk, sealed_seed in local_seed_dict.items():
            self._seeds.setdefault(bytes(summer_pk), {})[updater_pk] = bytes(sealed_seed)
        self._journal.append(bytes(journal_entry))
        return None

    async def seed_dict_column(self, summer_pk: bytes) -> dict[bytes, bytes]:
        return dict(self._seeds.get(summer_pk, {}))

    async def update_count(self) -> int:
        return len(self._update_participants)

    async def add_mask_vote(self, summer_pk: bytes, mask: bytes) -> VoteRejection | None:
        if summer_pk not in self._sum_dict:
            return VoteRejection.UNKNOWN_SUMMER
        if summer_pk in self._mask_submitted:
            return VoteRejection.ALREADY_SUBMITTED
        self._mask_submitted.add(bytes(summer_pk))
        digest = hashlib.sha256(mask).digest()
        self._masks.setdefault(digest, bytes(mask))
        self._mask_votes[digest] = self._mask_votes.get(digest, 0) + 1
        return None

    async def best_masks(self, limit: int = 2) -> list[MaskVote]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        ranked = sorted(self._mask_votes.items(), key=lambda item: item[1], reverse=True)
        return [MaskVote(self._masks[digest], votes) for digest, votes in ranked[:limit]]

    async def distinct_masks(self) -> int:
        return len(self._mask_votes)

    async def delete_round(self) -> None:
        self._reset_round()

    # -- running aggregate: journal and checkpoint -----------------------------------------------

    async def journal(self) -> list[bytes]:
        return list(self._journal)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        previous = self._checkpoint.count if self._checkpoint is not None else 0
        covered = checkpoint.count - previous
        if covered < 0:
            raise StorageError(
                f"checkpoint of {checkpoint.count} updates is older than the stored one "
                f"({previous})"
            )
        if covered > len(self._journal):
            raise StorageError(
                f"checkpoint of {checkpoint.count} updates covers {covered} journal entries, "
                f"only {len(self._journal)} are journaled"
            )
        del self._journal[:covered]
        self._checkpoint = checkpoint

    async def load_checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    # -- global models ---------------------------------------------------------------------------

    async def set_latest_model_id(self, model_id: str) -> None:
        self._latest_model_id = model_id

    async def latest_model_id(self) -> str | None:
        return self._latest_model_id


if TYPE_CHECKING:  # mypy checks that the backend implements the whole interface
    _conforms: Storage = MemoryStorage()
