"""The phase table and the counting window, with a fake clock (plain numbers)."""

from __future__ import annotations

import pytest

from xaynet.message import Tag
from xaynet_coordinator.phase import (
    MESSAGE_PHASE,
    TRANSITIONS,
    Admission,
    CountWindow,
    InvalidTransitionError,
    Phase,
    PhaseEvent,
    WindowStatus,
    next_phase,
)


def test_a_round_goes_through_the_phases_in_order() -> None:
    phase = Phase.IDLE
    seen = [phase]
    for event in (PhaseEvent.ROUND_READY, *[PhaseEvent.COMPLETE] * 4):
        phase = next_phase(phase, event)
        seen.append(phase)
    assert seen == [Phase.IDLE, Phase.SUM, Phase.UPDATE, Phase.SUM2, Phase.UNMASK, Phase.IDLE]


@pytest.mark.parametrize("phase", [Phase.SUM, Phase.UPDATE, Phase.SUM2])
def test_message_phases_time_out_into_failure(phase: Phase) -> None:
    assert next_phase(phase, PhaseEvent.TIMEOUT) is Phase.FAILURE


@pytest.mark.parametrize("phase", [Phase.IDLE, Phase.UNMASK, Phase.FAILURE, Phase.SHUTDOWN])
def test_only_message_phases_time_out(phase: Phase) -> None:
    with pytest.raises(InvalidTransitionError):
        next_phase(phase, PhaseEvent.TIMEOUT)


def test_failure_recovers_into_idle_and_nothing_leaves_shutdown() -> None:
    assert next_phase(Phase.FAILURE, PhaseEvent.RECOVERED) is Phase.IDLE
    for event in PhaseEvent:
        assert (Phase.SHUTDOWN, event) not in TRANSITIONS
    for phase in Phase:
        if phase is not Phase.SHUTDOWN:
            assert next_phase(phase, PhaseEvent.SHUTDOWN) is Phase.SHUTDOWN


def test_every_running_phase_can_fail() -> None:
    for phase in (Phase.IDLE, Phase.SUM, Phase.UPDATE, Phase.SUM2, Phase.UNMASK):
        assert next_phase(phase, PhaseEvent.ERROR) is Phase.FAILURE


def test_phase_codes_match_the_original_metric_codes() -> None:
    assert [p.code for p in Phase] == list(range(7))
    assert Phase.SHUTDOWN.code == 6


def test_message_kinds_map_to_their_phase() -> None:
    assert MESSAGE_PHASE == {Tag.SUM: Phase.SUM, Tag.UPDATE: Phase.UPDATE, Tag.SUM2: Phase.SUM2}


def window(**kw: float) -> CountWindow:
    base: dict[str, float] = {
        "count_min": 2,
        "count_max": 4,
        "time_min": 10,
        "time_max": 60,
        "started_at": 100,
    }
    base.update(kw)
    return CountWindow(**base)  # type: ignore[arg-type]


def accept(w: CountWindow, n: int, *, accepted: bool = True) -> None:
    for _ in range(n):
        assert w.admit() is Admission.ADMIT
        w.finish(accepted=accepted)


def test_window_waits_for_time_min_even_with_enough_messages() -> None:
    w = window()
    accept(w, 2)
    assert w.status(105) is WindowStatus.OPEN
    assert w.status(110) is WindowStatus.COMPLETE


def test_window_ends_early_when_count_max_is_reached() -> None:
    w = window()
    accept(w, 4)
    assert w.status(101) is WindowStatus.COMPLETE


def test_window_waits_for_count_min_until_time_max() -> None:
    w = window()
    accept(w, 1)
    accept(w, 3, accepted=False)  # rejected messages do not count
    assert w.status(110) is WindowStatus.OPEN
    assert w.status(159.9) is WindowStatus.OPEN
    assert w.status(160) is WindowStatus.TIMEOUT
    accept(w, 1)
    assert w.status(160) is WindowStatus.COMPLETE


def test_time_min_equal_time_max_fails_at_once_without_enough() -> None:
    w = window(time_min=10, time_max=10)
    accept(w, 1)
    assert w.status(110) is WindowStatus.TIMEOUT


def test_messages_beyond_count_max_are_discarded_and_counted() -> None:
    w = window()
    accept(w, 4)
    assert w.admit() is Admission.FULL
    assert w.counts() == {"accepted": 4, "rejected": 0, "discarded": 1, "in_flight": 0}


def test_in_flight_messages_reserve_slots_and_hold_the_decision() -> None:
    w = window(count_max=2, time_min=0)
    assert w.admit() is Admission.ADMIT
    assert w.admit() is Admission.ADMIT
    assert w.admit() is Admission.FULL  # two in flight fill the window
    assert w.status(1000) is WindowStatus.OPEN  # undecided while in flight, even past time_max
    w.finish(accepted=False)
    assert w.admit() is Admission.ADMIT  # the rejected one freed its slot
    w.finish(accepted=True)
    w.finish(accepted=True)
    assert w.status(100) is WindowStatus.COMPLETE


def test_closed_window_discards_late_messages() -> None:
    w = window()
    w.close()
    assert w.admit() is Admission.CLOSED
    assert w.discarded == 1


def test_deadline_is_time_min_then_time_max() -> None:
    w = window()
    assert w.deadline(100) == 110
    assert w.deadline(110) == 160


def test_finish_without_admit_is_an_error() -> None:
    with pytest.raises(ValueError, match="without admit"):
        window().finish(accepted=True)


@pytest.mark.parametrize(
    "kw", [{"count_min": 5, "count_max": 4}, {"time_min": 61}, {"count_min": -1}]
)
def test_window_rejects_inconsistent_limits(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need"):
        window(**kw)
