"""The PET phases, the one table of transitions between them, and the counting window.

Everything here is pure: time comes in as an argument (seconds, any monotone clock the caller
chooses), nothing sleeps and nothing does I/O, so every transition can be tested with a fake
clock. The engine (``engine.py``) performs the work of each phase and feeds the outcomes back.

Phase order of a round::

    IDLE --round_ready--> SUM --complete--> UPDATE --complete--> SUM2 --complete--> UNMASK
      ^                                                                                |
      +---------------------------------complete---------------------------------------+
    SUM/UPDATE/SUM2 --timeout--> FAILURE;  any phase --error--> FAILURE --recovered--> IDLE
    any phase --shutdown--> SHUTDOWN
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from xaynet.message import Tag

__all__ = [
    "Phase",
    "PhaseEvent",
    "TRANSITIONS",
    "InvalidTransitionError",
    "next_phase",
    "MESSAGE_PHASE",
    "Admission",
    "WindowStatus",
    "CountWindow",
]


class Phase(enum.Enum):
    """A coordinator phase. ``code`` is the number exported as the ``xaynet_phase`` metric."""

    IDLE = "idle"
    SUM = "sum"
    UPDATE = "update"
    SUM2 = "sum2"
    UNMASK = "unmask"
    FAILURE = "failure"
    SHUTDOWN = "shutdown"

    @property
    def code(self) -> int:
        return _CODES[self]

    @property
    def takes_messages(self) -> bool:
        return self in (Phase.SUM, Phase.UPDATE, Phase.SUM2)


_CODES = {phase: index for index, phase in enumerate(Phase)}


class PhaseEvent(enum.Enum):
    """What ends a phase."""

    ROUND_READY = "round_ready"  #: Idle prepared the round (keys, seed, parameters)
    COMPLETE = "complete"  #: the phase did its work (a message phase: its window closed)
    TIMEOUT = "timeout"  #: a message phase reached time.max with fewer than count.min messages
    ERROR = "error"  #: storage, model store or unmasking failed
    RECOVERED = "recovered"  #: after a failure, storage answers again
    SHUTDOWN = "shutdown"  #: the process is stopping


_RUNNING = (Phase.IDLE, Phase.SUM, Phase.UPDATE, Phase.SUM2, Phase.UNMASK)
_MESSAGE_PHASES = (Phase.SUM, Phase.UPDATE, Phase.SUM2)

#: The whole state machine: (phase, event) -> next phase. Nothing else changes the phase.
TRANSITIONS: dict[tuple[Phase, PhaseEvent], Phase] = {
    (Phase.IDLE, PhaseEvent.ROUND_READY): Phase.SUM,
    (Phase.SUM, PhaseEvent.COMPLETE): Phase.UPDATE,
    (Phase.UPDATE, PhaseEvent.COMPLETE): Phase.SUM2,
    (Phase.SUM2, PhaseEvent.COMPLETE): Phase.UNMASK,
    (Phase.UNMASK, PhaseEvent.COMPLETE): Phase.IDLE,
    **{
        (phase, PhaseEvent.TIMEOUT): Phase.FAILURE
        for phase in (Phase.SUM, Phase.UPDATE, Phase.SUM2)
    },
    **{(phase, PhaseEvent.ERROR): Phase.FAILURE for phase in _RUNNING},
    (Phase.FAILURE, PhaseEvent.RECOVERED): Phase.IDLE,
    **{(phase, PhaseEvent.SHUTDOWN): Phase.SHUTDOWN for phase in (*_RUNNING, Phase.FAILURE)},
}

#: The phase in which each message kind is accepted.
MESSAGE_PHASE: dict[Tag, Phase] = {
    Tag.SUM: Phase.SUM,
    Tag.UPDATE: Phase.UPDATE,
    Tag.SUM2: Phase.SUM2,
}


class InvalidTransitionError(Exception):
    """An event that the table does not allow in the current phase (a bug in the caller)."""


def next_phase(phase: Phase, event: PhaseEvent) -> Phase:
    """Look the transition up in :data:`TRANSITIONS`."""
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise InvalidTransitionError(f"no transition from {phase.value} on {event.value}") from None


class Admission(enum.Enum):
    """What :meth:`CountWindow.admit` decides for an arriving message."""

    ADMIT = "admit"  #: process it; report the outcome with :meth:`CountWindow.finish`
    FULL = "full"  #: count.max messages are accepted or in flight: discarded
    CLOSED = "closed"  #: the window is closing or closed: discarded


class WindowStatus(enum.Enum):
    """What :meth:`CountWindow.status` says about the phase."""

    OPEN = "open"  #: keep accepting
    COMPLETE = "complete"  #: enough messages and time.min has passed (or count.max reached)
    TIMEOUT = "timeout"  #: time.max has passed with fewer than count.min messages


@dataclass(slots=True)
class CountWindow:
    """The counting window of a message phase (Sum, Update, Sum2).

    The phase lasts at least ``time_min`` and at most ``time_max`` seconds from ``started_at``
    and accepts between ``count_min`` and ``count_max`` messages: it completes as soon as
    ``count_min`` messages are accepted and ``time_min`` has passed, or as soon as ``count_max``
    are accepted (nothing more could be accepted anyway). Messages beyond ``count_max`` are
    discarded. At ``time_max`` with fewer than ``count_min`` the phase times out. Messages being
    processed when the window closes are waited for, so every admitted message is decided.
    """

    count_min: int
    count_max: int
    time_min: float
    time_max: float
    started_at: float
    accepted: int = 0
    rejected: int = 0
    discarded: int = 0
    in_flight: int = 0
    closed: bool = field(default=False)

    def __post_init__(self) -> None:
        if not 0 <= self.count_min <= self.count_max:
            raise ValueError("need 0 <= count_min <= count_max")
        if not 0 <= self.time_min <= self.time_max:
            raise ValueError("need 0 <= time_min <= time_max")

    def admit(self) -> Admission:
        """Decide whether an arriving message is processed, and reserve a slot if it is."""
        if self.closed:
            self.discarded += 1
            return Admission.CLOSED
        if self.accepted + self.in_flight >= self.count_max:
            self.discarded += 1
            return Admission.FULL
        self.in_flight += 1
        return Admission.ADMIT

    def finish(self, *, accepted: bool) -> None:
        """Report the outcome of an admitted message."""
        if self.in_flight <= 0:
            raise ValueError("finish() without admit()")
        self.in_flight -= 1
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1

    def status(self, now: float) -> WindowStatus:
        """Whether the phase goes on, is complete or timed out at ``now``.

        Never COMPLETE or TIMEOUT while messages are in flight: their outcome may change it.
        """
        elapsed = now - self.started_at
        if self.in_flight:
            return WindowStatus.OPEN
        if self.accepted >= self.count_max:
            return WindowStatus.COMPLETE
        if self.accepted >= self.count_min and elapsed >= self.time_min:
            return WindowStatus.COMPLETE
        if elapsed >= self.time_max:
            return WindowStatus.TIMEOUT
        return WindowStatus.OPEN

    def close(self) -> None:
        """Stop admitting messages (the phase is ending)."""
        self.closed = True

    def deadline(self, now: float) -> float:
        """The next time at which :meth:`status` can change without a message arriving."""
        if now < self.started_at + self.time_min:
            return self.started_at + self.time_min
        return self.started_at + self.time_max

    def counts(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "discarded": self.discarded,
            "in_flight": self.in_flight,
        }
