"""What happened to a submitted message: HTTP status, a stable reason word, and a detail text.

Unlike the original coordinator's blanket 200, ``POST /message`` tells the participant exactly
what happened; the reason words are also the ``reason`` label of the message metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Outcome", "REASONS"]

#: reason -> (HTTP status, meaning). docs/PROTOCOL.md section 10 renders this table.
REASONS: dict[str, tuple[int, str]] = {
    "accepted": (202, "the message counts in this phase"),
    "chunk_buffered": (202, "a chunk of a multipart message was buffered"),
    "malformed": (400, "the plaintext does not decode (header, payload, mask object, seed dict)"),
    "undecryptable": (400, "the body is not a sealed box for the current round key"),
    "wrong_coordinator_key": (400, "the signed header names another round key"),
    "invalid_masked_model": (
        400,
        "the masked model misfits the round (config, length, range)",
    ),
    "invalid_mask": (400, "the aggregated mask does not fit the round (config, length, range)"),
    "seed_dict_length": (400, "the local seed dict does not have one entry per summer"),
    "unknown_summer": (403, "the seed dict names a non-summer, or a Sum2 sender is not a summer"),
    "multipart_invalid": (400, "a chunk conflicts with the chunks buffered before it"),
    "bad_signature": (403, "the message signature does not verify"),
    "not_eligible": (403, "the task signatures do not select the sender for this task"),
    "already_submitted": (409, "this participant already sent this message in this round"),
    "wrong_phase": (409, "the message belongs to another phase of the current round"),
    "stale_round": (410, "the message was sealed to the previous round's key"),
    "too_large": (413, "the body or the buffered chunks exceed the configured limits"),
    "unsupported_media_type": (415, "the body must be application/octet-stream"),
    "phase_full": (503, "the phase accepted count.max messages: retry next round"),
    "phase_closing": (503, "the phase is closing: retry next round"),
    "not_accepting": (503, "the coordinator accepts no messages in its current phase"),
    "storage_unavailable": (503, "the state store failed; retry later"),
    "shutting_down": (503, "the coordinator is stopping; retry later"),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one ``POST /message``."""

    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown outcome reason {self.reason!r}")

    @property
    def status(self) -> int:
        return REASONS[self.reason][0]

    @property
    def accepted(self) -> bool:
        """Whether the message (or chunk) was taken: a 2xx."""
        return self.status < 300

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail or REASONS[self.reason][1],
        }
