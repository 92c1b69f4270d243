"""Outcomes: statuses, JSON form, and the table in docs/PROTOCOL.md kept in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from xaynet_coordinator.outcome import REASONS, Outcome

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def test_every_reason_is_documented_with_its_status() -> None:
    text = PROTOCOL.read_text()
    for reason, (status, _) in REASONS.items():
        assert f"| {status} | `{reason}` |" in text, reason


def test_outcome_json_and_status() -> None:
    outcome = Outcome("already_submitted", "twice")
    assert outcome.status == 409
    assert not outcome.accepted
    assert outcome.to_json() == {"status": 409, "reason": "already_submitted", "detail": "twice"}
    assert Outcome("chunk_buffered").accepted
    assert Outcome("accepted").to_json()["detail"] == REASONS["accepted"][1]


def test_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outcome reason"):
        Outcome("fine")
