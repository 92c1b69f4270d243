"""Storage backends for the coordinator's round state."""

from __future__ import annotations

from xaynet_coordinator.storage.base import (
    Checkpoint,
    MaskVote,
    Storage,
    StorageError,
    UpdateRejection,
    VoteRejection,
)

__all__ = [
    "Checkpoint",
    "MaskVote",
    "Storage",
    "StorageError",
    "UpdateRejection",
    "VoteRejection",
]
