"""Every state and transition of the participant state machine, with fake coordinator answers."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from participant._fixtures import CONFIG, make_params
from participant._machine_support import (
    MODEL,
    NEXT_PARAMS,
    PARAMS,
    into_round,
    machine_for,
    opened,
    rng_bytes,
    wait_then_refresh,
)
from xaynet.crypto import EncryptKeyPair
from xaynet.errors import LocalProtocolError, ModelError
from xaynet.mask import Aggregation, derive_mask, mask_model
from xaynet.message import Sum, Sum2, Update
from xaynet.participant import ParticipantMachine, Role, State, Task, WaitReason
from xaynet.participant.actions import (
    Compute,
    FetchParams,
    FetchSeeds,
    FetchSums,
    GlobalModelAvailable,
    MessageAccepted,
    MessageRejected,
    MessageSent,
    ModelAnnounced,
    NeedModel,
    ParamsReceived,
    Post,
    PostResult,
    Retrying,
    RoleTaken,
    RoundStarted,
    RoundUnsupported,
    SeedsReceived,
    SumsReceived,
    TaskAbandoned,
    TaskFailed,
    TransportFailed,
    Wait,
    Waited,
)

SUMMER_EPHEMERAL = [EncryptKeyPair.from_seed(bytes([200 + i]) * 32) for i in range(2)]
SUM_DICT = {bytes([90 + i]) * 32: keys.public for i, keys in enumerate(SUMMER_EPHEMERAL)}


def updater_in_update_state(**settings: object) -> ParticipantMachine:
    machine = machine_for(Role.UPDATE, **settings)  # type: ignore[arg-type]
    into_round(machine)
    assert machine.state is State.UPDATE
    return machine


def updater_sending(weight: float = 1, **settings: object) -> ParticipantMachine:
    machine = updater_in_update_state(**settings)
    machine.set_model(MODEL, weight)
    assert machine.next_request() == FetchSums()
    machine.receive(SumsReceived(SUM_DICT))
    assert machine.next_request() == Compute(State.UPDATE)
    assert machine.compute() == []
    assert machine.state is State.SENDING_UPDATE
    return machine


def summer_after_sum() -> ParticipantMachine:
    machine = machine_for(Role.SUM)
    into_round(machine)
    machine.next_request()
    machine.compute()
    post = machine.next_request()
    assert isinstance(post, Post)
    machine.receive(PostResult(202, "accepted"))
    assert machine.state is State.SUM2
    return machine


# -- start and round detection -----------------------------------------------------------------


def test_the_first_request_fetches_the_parameters_and_repeats_until_answered() -> None:
    machine = machine_for(Role.SUM)
    assert machine.state is State.AWAITING
    assert machine.params is None
    assert machine.round_id is None
    first = machine.next_request()
    assert first == FetchParams(None)
    assert machine.next_request() is first


def test_no_round_yet_waits_with_a_growing_attempt_count() -> None:
    machine = machine_for(Role.SUM)
    machine.next_request()
    assert machine.receive(ParamsReceived(None)) == []
    assert machine.next_request() == Wait(WaitReason.NO_ROUND, 0)
    machine.receive(Waited())
    assert machine.next_request() == FetchParams(None)
    machine.receive(ParamsReceived(None))
    assert machine.next_request() == Wait(WaitReason.NO_ROUND, 1)


def test_new_parameters_start_a_round_and_announce_a_model() -> None:
    machine = machine_for(Role.SUM)
    machine.next_request()
    events = machine.receive(ParamsReceived(PARAMS, etag='"abc"'))
    assert events == [RoundStarted(3, PARAMS), GlobalModelAvailable(None)]
    assert machine.state is State.NEW_ROUND
    assert machine.params == PARAMS
    assert machine.role is None
    assert machine.next_request() == Compute(State.NEW_ROUND)


@pytest.mark.parametrize(
    ("role", "state"),
    [(Role.SUM, State.SUM), (Role.UPDATE, State.UPDATE), (Role.NONE, State.AWAITING)],
)
def test_role_selection(role: Role, state: State) -> None:
    machine = machine_for(role)
    events = into_round(machine)
    assert events[-1] == RoleTaken(3, role)
    assert machine.role is role
    assert machine.state is state


def test_without_a_task_the_participant_waits_for_the_next_round() -> None:
    machine = machine_for(Role.NONE)
    into_round(machine)
    assert machine.task is None
    assert machine.next_request() == Wait(WaitReason.NEXT_ROUND, 0)
    wait_then_refresh(machine)
    assert machine.next_request() == Wait(WaitReason.NEXT_ROUND, 1)
    machine.receive(Waited())
    assert machine.next_request() == FetchParams('"e1"'), "the ETag is sent back"
    events = machine.receive(ParamsReceived(NEXT_PARAMS, etag='"e2"'))
    assert events[0] == RoundStarted(4, NEXT_PARAMS)
    assert machine.state is State.NEW_ROUND


def test_a_round_with_another_model_length_is_skipped() -> None:
    machine = machine_for(Role.UPDATE, model_length=5)
    machine.next_request()
    events = machine.receive(ParamsReceived(PARAMS))
    assert isinstance(events[-1], RoundUnsupported)
    assert "4 values" in events[-1].reason
    assert machine.state is State.AWAITING
    assert isinstance(machine.next_request(), Wait)


def test_a_model_announcement_is_passed_on_at_any_time() -> None:
    machine = machine_for(Role.SUM)
    request = machine.next_request()
    assert machine.receive(ModelAnnounced(7)) == [GlobalModelAvailable(7)]
    assert machine.next_request() is request


# -- summer ------------------------------------------------------------------------------------


def test_summer_sends_sum_then_polls_seeds_then_sends_sum2() -> None:
    machine = machine_for(Role.SUM)
    into_round(machine)
    assert machine.task is Task.SUM
    assert machine.next_request() == Compute(State.SUM)
    assert machine.compute() == []
    assert machine.state is State.SENDING_SUM
    post = machine.next_request()
    assert isinstance(post, Post)
    assert (post.task, post.part, post.parts) == (Task.SUM, 0, 1)
    message = opened(post.body)
    assert message.participant_pk == machine.public_key
    assert isinstance(message.payload, Sum)
    ephemeral_pk = message.payload.ephm_pk
    events = machine.receive(PostResult(202, "accepted"))
    assert events == [
        MessageSent(3, Task.SUM, 0, 1, post.size, "accepted"),
        MessageAccepted(3, Task.SUM, 1, post.size, "accepted"),
    ]
    assert machine.state is State.SUM2
    assert machine.task is Task.SUM2

    # Seeds not published yet: wait, re-check the round, ask again.
    assert machine.next_request() == FetchSeeds(machine.public_key)
    assert machine.receive(SeedsReceived(None)) == []
    assert machine.next_request() == Wait(WaitReason.SEEDS, 0)
    wait_then_refresh(machine)
    assert machine.next_request() == FetchSeeds(machine.public_key)

    from xaynet.crypto import seal

    seeds = [bytes([i]) * 32 for i in (5, 6, 7)]
    column = {bytes([i + 1]) * 32: seal(ephemeral_pk, seed) for i, seed in enumerate(seeds)}
    machine.receive(SeedsReceived(column))
    assert machine.next_request() == Compute(State.SUM2)
    assert machine.compute() == []
    post = machine.next_request()
    assert isinstance(post, Post)
    assert post.task is Task.SUM2
    payload = opened(post.body).payload
    assert isinstance(payload, Sum2)
    expected = Aggregation(CONFIG, 4)
    for seed in seeds:
        expected.add(derive_mask(seed, config=CONFIG, length=4))
    assert payload.model_mask == expected.result()
    events = machine.receive(PostResult(202, "accepted"))
    assert events[-1] == MessageAccepted(3, Task.SUM2, 1, post.size, "accepted")
    assert machine.state is State.AWAITING
    assert machine.role is Role.SUM
    assert machine.next_request() == Wait(WaitReason.NEXT_ROUND, 0)


def test_seeds_that_do_not_open_fail_the_sum2_task() -> None:
    machine = summer_after_sum()
    machine.next_request()
    machine.receive(SeedsReceived({bytes(32): b"\x01" * 80}))
    machine.next_request()
    events = machine.compute()
    assert len(events) == 1
    assert isinstance(events[0], TaskFailed)
    assert (events[0].task, events[0].reason) == (Task.SUM2, "invalid_seeds")
    assert machine.state is State.AWAITING


def test_an_abandoned_sum_message_does_not_lead_to_sum2() -> None:
    machine = machine_for(Role.SUM)
    into_round(machine)
    machine.next_request()
    machine.compute()
    machine.next_request()
    events = machine.receive(PostResult(503, "phase_full", "full"))
    assert events == [
        MessageRejected(3, Task.SUM, 503, "phase_full", "full"),
        TaskAbandoned(3, Task.SUM, "phase_full"),
    ]
    assert machine.state is State.AWAITING
    assert machine.next_request() == FetchParams('"e1"'), "a refusal re-reads the round at once"


# -- updater -----------------------------------------------------------------------------------


def test_updater_asks_for_the_model_then_the_sums_then_sends_the_masked_model() -> None:
    machine = updater_in_update_state(max_weight=100)
    assert machine.needs_model
    request = machine.next_request()
    assert request == NeedModel(PARAMS)
    machine.set_model(MODEL, 25)
    assert not machine.needs_model
    assert machine.next_request() == FetchSums()
    machine.receive(SumsReceived(None))
    assert machine.next_request() == Wait(WaitReason.SUMS, 0)
    wait_then_refresh(machine)
    assert machine.next_request() == FetchSums()
    machine.receive(SumsReceived(SUM_DICT))
    assert machine.next_request() == Compute(State.UPDATE)
    machine.compute()
    post = machine.next_request()
    assert isinstance(post, Post)
    assert (post.task, post.parts) == (Task.UPDATE, 1)
    payload = opened(post.body).payload
    assert isinstance(payload, Update)
    assert set(payload.local_seed_dict) == set(SUM_DICT)
    # Every summer opens the same mask seed, and it masks MODEL with scalar 25/100.
    opened_seeds = {
        keys.open(payload.local_seed_dict[pk])
        for pk, keys in zip(SUM_DICT, SUMMER_EPHEMERAL, strict=True)
    }
    assert len(opened_seeds) == 1
    (mask_seed,) = opened_seeds
    expected = mask_model(mask_seed, MODEL, config=CONFIG, scalar=Fraction(1, 4))
    assert payload.masked_model == expected
    events = machine.receive(PostResult(202, "accepted"))
    assert events[-1] == MessageAccepted(3, Task.UPDATE, 1, post.size, "accepted")
    assert machine.state is State.AWAITING


def test_model_unavailable_waits_and_asks_again() -> None:
    machine = updater_in_update_state()
    assert isinstance(machine.next_request(), NeedModel)
    machine.model_unavailable()
    assert machine.next_request() == Wait(WaitReason.MODEL, 0)
    wait_then_refresh(machine)
    assert machine.next_request() == NeedModel(PARAMS)


def test_a_model_set_during_the_model_wait_is_used_after_it() -> None:
    machine = updater_in_update_state()
    machine.next_request()
    machine.model_unavailable()
    wait = machine.next_request()
    machine.set_model(MODEL)
    assert machine.next_request() is wait, "the driver still answers its wait"
    wait_then_refresh(machine)
    assert machine.next_request() == FetchSums()


def test_declining_the_update_task() -> None:
    machine = updater_in_update_state()
    machine.next_request()
    assert machine.decline_task() == [TaskAbandoned(3, Task.UPDATE, "declined")]
    assert machine.state is State.AWAITING
    assert machine.next_request() == Wait(WaitReason.NEXT_ROUND, 0)
    with pytest.raises(LocalProtocolError):
        machine.decline_task()


@pytest.mark.parametrize(
    ("model", "weight", "match"),
    [
        (MODEL[:3], 1, "3 values"),
        ([*MODEL, 1.0], 1, "5 values"),
        ([0.1, float("nan"), 0.0, 0.0], 1, "finite"),
        (["a", 0.0, 0.0, 0.0], 1, "numbers"),
        (MODEL, 2, "exceeds max_weight"),
        (MODEL, -1, ">= 0"),
        (MODEL, float("inf"), "finite"),
        (MODEL, "1", "number"),
    ],
)
def test_bad_models_and_weights_are_refused_early(
    model: object, weight: object, match: str
) -> None:
    machine = updater_in_update_state()
    machine.next_request()
    with pytest.raises(ModelError, match=match):
        machine.set_model(model, weight)  # type: ignore[arg-type]
    assert machine.needs_model, "nothing was stored"


def test_set_model_when_no_model_is_needed() -> None:
    machine = machine_for(Role.SUM)
    into_round(machine)
    with pytest.raises(LocalProtocolError, match="no local model is needed"):
        machine.set_model(MODEL)


def test_a_model_of_an_integer_round_must_hold_integers() -> None:
    from xaynet.mask import MaskConfig, MaskConfigPair

    ints = MaskConfigPair(MaskConfig.from_names("Prime", "I32", "B0", "M3"), CONFIG.unit)
    params = make_params(mask_config=ints)
    machine = machine_for(Role.UPDATE, params)
    into_round(machine, params)
    with pytest.raises(ModelError, match="integers"):
        machine.set_model([0.5, 0, 0, 0])
    machine.set_model([1, 0, -1, 0])


def test_chunked_update_is_sent_part_by_part() -> None:
    machine = updater_sending(max_message_size=300)
    posts = []
    while machine.state is State.SENDING_UPDATE:
        post = machine.next_request()
        assert isinstance(post, Post)
        assert len(post.body) <= 300
        posts.append(post)
        last = post.part == post.parts - 1
        reason = "accepted" if last else "chunk_buffered"
        events = machine.receive(PostResult(202, reason))
        assert events[0] == MessageSent(3, Task.UPDATE, post.part, post.parts, post.size, reason)
        assert len(events) == (2 if last else 1)
    assert [p.part for p in posts] == list(range(len(posts)))
    assert len(posts) > 2
    assert events[-1] == MessageAccepted(
        3, Task.UPDATE, len(posts), sum(p.size for p in posts), "accepted"
    )
    assert len({opened(p.body).payload.message_id for p in posts}) == 1  # type: ignore[union-attr]


# -- POST outcomes -----------------------------------------------------------------------------


def test_already_submitted_counts_as_done() -> None:
    machine = updater_sending()
    post = machine.next_request()
    assert isinstance(post, Post)
    events = machine.receive(PostResult(409, "already_submitted"))
    assert events == [MessageAccepted(3, Task.UPDATE, 1, post.size, "already_submitted")]
    assert machine.state is State.AWAITING


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (409, "wrong_phase"),
        (410, "stale_round"),
        (503, "phase_full"),
        (503, "phase_closing"),
        (503, "not_accepting"),
    ],
)
def test_too_late_abandons_the_task_until_the_next_round(status: int, reason: str) -> None:
    machine = updater_sending()
    machine.next_request()
    events = machine.receive(PostResult(status, reason, "why"))
    assert events == [
        MessageRejected(3, Task.UPDATE, status, reason, "why"),
        TaskAbandoned(3, Task.UPDATE, reason),
    ]
    assert machine.state is State.AWAITING
    assert machine.task is None
    assert machine.next_request() == FetchParams('"e1"')
    machine.receive(ParamsReceived(None))
    assert machine.next_request() == Wait(WaitReason.NEXT_ROUND, 0)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (503, "storage_unavailable"),
        (503, "shutting_down"),
        (500, "internal"),
        (502, "bad_gateway"),
        (429, "slow_down"),
    ],
)
def test_busy_coordinator_gets_the_same_bytes_again(status: int, reason: str) -> None:
    machine = updater_sending()
    post = machine.next_request()
    events = machine.receive(PostResult(status, reason))
    assert len(events) == 1
    assert isinstance(events[0], Retrying)
    assert events[0].request == "post"
    assert reason in events[0].detail
    assert machine.next_request() == Wait(WaitReason.RETRY, 0)
    wait_then_refresh(machine)
    assert machine.next_request() == post
    assert machine.state is State.SENDING_UPDATE


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "malformed"),
        (400, "undecryptable"),
        (403, "not_eligible"),
        (403, "bad_signature"),
        (413, "too_large"),
        (415, "unsupported_media_type"),
        (404, "not_found"),
    ],
)
def test_a_rejected_message_fails_the_task(status: int, reason: str) -> None:
    machine = updater_sending()
    machine.next_request()
    events = machine.receive(PostResult(status, reason, "details"))
    assert events == [
        MessageRejected(3, Task.UPDATE, status, reason, "details"),
        TaskFailed(3, Task.UPDATE, reason, "details"),
    ]
    assert machine.state is State.AWAITING


@given(
    status=st.integers(100, 599),
    reason=st.sampled_from(
        ["accepted", "chunk_buffered", "wrong_phase", "shutting_down", "malformed", "x", ""]
    ),
)
def test_any_post_outcome_leaves_a_consistent_machine(status: int, reason: str) -> None:
    machine = updater_sending()
    machine.next_request()
    events = machine.receive(PostResult(status, reason))
    request = machine.next_request()
    if machine.state is State.SENDING_UPDATE:
        assert isinstance(request, Wait)
        assert isinstance(events[0], Retrying)
    else:
        assert machine.state is State.AWAITING
        assert isinstance(request, FetchParams | Wait)
    assert ParticipantMachine.restore(machine.save(), random_bytes=rng_bytes()).state is (
        machine.state
    )


# -- transport failures ------------------------------------------------------------------------


def test_a_failed_params_fetch_is_retried_after_a_wait() -> None:
    machine = machine_for(Role.SUM)
    machine.next_request()
    events = machine.receive(TransportFailed("connection refused"))
    assert events == [Retrying(None, "params", "connection refused", 0)]
    assert machine.next_request() == Wait(WaitReason.TRANSPORT, 0)
    machine.receive(Waited())
    assert machine.next_request() == FetchParams(None)
    machine.receive(TransportFailed("again"))
    assert machine.next_request() == Wait(WaitReason.TRANSPORT, 1)


@pytest.mark.parametrize("stage", ["sums", "post"])
def test_failed_requests_of_a_task_are_repeated(stage: str) -> None:
    machine = updater_in_update_state()
    machine.next_request()
    machine.set_model(MODEL)
    if stage == "post":
        machine.next_request()
        machine.receive(SumsReceived(SUM_DICT))
        machine.next_request()
        machine.compute()
    request = machine.next_request()
    events = machine.receive(TransportFailed("timeout"))
    assert events == [Retrying(3, request.name, "timeout", 0)]
    wait_then_refresh(machine)
    assert machine.next_request() == request


def test_seed_fetch_failure_is_repeated() -> None:
    machine = summer_after_sum()
    request = machine.next_request()
    assert isinstance(request, FetchSeeds)
    machine.receive(TransportFailed("reset"))
    wait_then_refresh(machine)
    assert machine.next_request() == request


# -- a new round abandons the task ---------------------------------------------------------------


def test_new_round_abandons_an_update_being_sent() -> None:
    machine = updater_sending()
    machine.next_request()
    machine.receive(PostResult(503, "storage_unavailable"))
    machine.next_request()
    machine.receive(Waited())
    assert isinstance(machine.next_request(), FetchParams)
    events = machine.receive(ParamsReceived(NEXT_PARAMS))
    assert events[0] == TaskAbandoned(3, Task.UPDATE, "new_round")
    assert events[1] == RoundStarted(4, NEXT_PARAMS)
    assert machine.state is State.NEW_ROUND
    assert machine.next_request() == Compute(State.NEW_ROUND)


def test_new_round_abandons_a_summer_waiting_for_seeds() -> None:
    machine = summer_after_sum()
    machine.next_request()
    machine.receive(SeedsReceived(None))
    machine.next_request()
    machine.receive(Waited())
    machine.next_request()
    events = machine.receive(ParamsReceived(NEXT_PARAMS))
    assert events[0] == TaskAbandoned(3, Task.SUM2, "new_round")
    assert machine.role is None, "the new round's role is not chosen yet"


def test_a_refreshed_but_unchanged_round_keeps_the_task() -> None:
    machine = summer_after_sum()
    machine.next_request()
    machine.receive(SeedsReceived(None))
    machine.next_request()
    machine.receive(Waited())
    machine.next_request()
    assert machine.receive(ParamsReceived(PARAMS)) == []
    assert machine.state is State.SUM2


# -- misuse ----------------------------------------------------------------------------------


def test_answers_must_match_the_request() -> None:
    machine = machine_for(Role.SUM)
    machine.next_request()
    with pytest.raises(LocalProtocolError, match="FetchSums"):
        machine.receive(SumsReceived(None))
    with pytest.raises(LocalProtocolError, match="Post"):
        machine.receive(PostResult(202, "accepted"))
    with pytest.raises(LocalProtocolError, match="Compute"):
        machine.compute()
    with pytest.raises(LocalProtocolError, match="NeedModel"):
        machine.model_unavailable()
    with pytest.raises(LocalProtocolError, match="not a response"):
        machine.receive("params")  # type: ignore[arg-type]


def test_responses_check_their_fields() -> None:
    with pytest.raises(LocalProtocolError):
        SumsReceived({b"short": b"x"})
    with pytest.raises(LocalProtocolError):
        SeedsReceived([1, 2])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        PostResult("202", "accepted")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ParamsReceived({"round_id": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [{"max_weight": 0}, {"max_weight": -1}, {"max_message_size": "4096"}, {"model_length": 0}],
)
def test_bad_settings(settings: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        machine_for(Role.SUM, **settings)


def test_random_bytes_must_deliver() -> None:
    with pytest.raises(LocalProtocolError, match="32 bytes"):
        ParticipantMachine.new(random_bytes=lambda n: b"\x00" * (n - 1))


def test_new_draws_the_identity_from_random_bytes() -> None:
    one = ParticipantMachine.new(random_bytes=rng_bytes(1))
    two = ParticipantMachine.new(random_bytes=rng_bytes(1))
    three = ParticipantMachine.new(random_bytes=rng_bytes(2))
    assert one.public_key == two.public_key != three.public_key
    assert repr(one).startswith("<ParticipantMachine ")
