"""Prometheus metrics of the coordinator, in a registry of its own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from xaynet_coordinator.outcome import Outcome
from xaynet_coordinator.phase import Phase

__all__ = ["Metrics"]

_DISCARDED = {"phase_full", "phase_closing"}


class Metrics:
    """Every metric the coordinator exports at ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.phase = Gauge(
            "xaynet_phase",
            "Current phase: 0 idle, 1 sum, 2 update, 3 sum2, 4 unmask, 5 failure, 6 shutdown",
            registry=r,
        )
        self.round_id = Gauge("xaynet_round_id", "Current round id", registry=r)
        self.messages = Counter(
            "xaynet_messages",
            "POST /message requests by phase, outcome (accepted, rejected, discarded) and reason",
            ["phase", "outcome", "reason"],
            registry=r,
        )
        self.bytes_received = Counter(
            "xaynet_message_bytes_received", "Bytes of POST /message bodies", registry=r
        )
        self.phase_duration = Histogram(
            "xaynet_phase_duration_seconds",
            "Duration of completed phases",
            ["phase"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.distinct_masks = Gauge(
            "xaynet_distinct_masks",
            "Distinct aggregated masks voted for in the last Sum2",
            registry=r,
        )
        self.rounds_completed = Counter(
            "xaynet_rounds_completed", "Rounds that published a global model", registry=r
        )
        self.rounds_failed = Counter(
            "xaynet_rounds_failed",
            "Rounds that failed, by the phase they failed in",
            ["phase"],
            registry=r,
        )

    def set_round(self, round_id: int, phase: Phase) -> None:
        self.round_id.set(round_id)
        self.phase.set(phase.code)

    def message(self, phase: Phase, outcome: Outcome, size: int) -> None:
        if outcome.accepted:
            kind = "accepted"
        elif outcome.reason in _DISCARDED:
            kind = "discarded"
        else:
            kind = "rejected"
        self.messages.labels(phase.value, kind, outcome.reason).inc()
        self.bytes_received.inc(size)

    def phase_finished(self, phase: Phase, seconds: float) -> None:
        self.phase_duration.labels(phase.value).observe(max(0.0, seconds))
        if phase is Phase.UNMASK:
            self.rounds_completed.inc()

    def round_failed(self, phase: Phase) -> None:
        self.rounds_failed.labels(phase.value).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
