"""save() and restore(): a participant continues mid-round from its saved bytes."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from participant._fixtures import CONFIG
from participant._machine_support import (
    MODEL,
    PARAMS,
    into_round,
    machine_for,
    opened,
    rng_bytes,
)
from xaynet.crypto import seal
from xaynet.errors import DecodeError
from xaynet.mask import Aggregation, derive_mask
from xaynet.message import Sum, Sum2
from xaynet.participant import ParticipantMachine, Role, State, Task
from xaynet.participant.actions import (
    Compute,
    FetchParams,
    FetchSeeds,
    FetchSums,
    MessageAccepted,
    NeedModel,
    ParamsReceived,
    Post,
    PostResult,
    SeedsReceived,
    SumsReceived,
)
from xaynet.participant.machine import STATE_FORMAT, STATE_VERSION

SUM_DICT = {bytes([90]) * 32: bytes([91]) * 32}


def restored(machine: ParticipantMachine, seed: int = 9) -> ParticipantMachine:
    return ParticipantMachine.restore(machine.save(), random_bytes=rng_bytes(seed))


def test_the_saved_state_is_versioned_json_holding_the_secret_key() -> None:
    machine = machine_for(Role.SUM, max_weight=1000, max_message_size=5000, model_length=4)
    doc = json.loads(machine.save())
    assert (doc["format"], doc["version"]) == (STATE_FORMAT, STATE_VERSION)
    # As documented: the secret signing key is in the bytes.
    assert doc["signing_key_seed"] == machine.keys.secret[:32].hex()
    again = restored(machine)
    assert again.keys == machine.keys
    assert (again.max_weight, again.max_message_size, again.model_length) == (1000, 5000, 4)
    assert again.next_request() == FetchParams(None)


def test_restore_before_the_role_is_chosen() -> None:
    machine = machine_for(Role.UPDATE)
    machine.next_request()
    machine.receive(ParamsReceived(PARAMS, etag='"x"'))
    again = restored(machine)
    assert again.state is State.NEW_ROUND
    assert again.params == PARAMS
    assert again.next_request() == Compute(State.NEW_ROUND)
    again.compute()
    assert again.state is State.UPDATE


def test_a_summer_restored_while_waiting_for_seeds_completes_sum2() -> None:
    machine = machine_for(Role.SUM)
    into_round(machine)
    machine.next_request()
    machine.compute()
    post = machine.next_request()
    assert isinstance(post, Post)
    payload = opened(post.body).payload
    assert isinstance(payload, Sum)
    machine.receive(PostResult(202, "accepted"))
    assert machine.state is State.SUM2

    again = restored(machine)
    assert again.state is State.SUM2
    assert again.role is Role.SUM
    assert again.next_request() == FetchSeeds(machine.public_key)
    # The seeds were sealed to the ephemeral key announced before the save.
    seeds = [bytes([i]) * 32 for i in (3, 4)]
    column = {bytes([i + 1]) * 32: seal(payload.ephm_pk, s) for i, s in enumerate(seeds)}
    again.receive(SeedsReceived(column))
    again.next_request()
    assert again.compute() == []
    post = again.next_request()
    assert isinstance(post, Post)
    sum2 = opened(post.body).payload
    assert isinstance(sum2, Sum2)
    expected = Aggregation(CONFIG, 4)
    for seed in seeds:
        expected.add(derive_mask(seed, config=CONFIG, length=4))
    assert sum2.model_mask == expected.result()


def test_a_summer_restored_with_its_seeds_fetched() -> None:
    machine = machine_for(Role.SUM)
    into_round(machine)
    machine.next_request()
    machine.compute()
    pk = opened(machine.next_request().body).payload.ephm_pk  # type: ignore[attr-defined]
    machine.receive(PostResult(202, "accepted"))
    machine.next_request()
    machine.receive(SeedsReceived({bytes(32): seal(pk, bytes(32))}))
    again = restored(machine)
    assert again.next_request() == Compute(State.SUM2)
    again.compute()
    assert again.state is State.SENDING_SUM2


def test_an_update_restored_in_the_middle_of_its_chunks() -> None:
    machine = machine_for(Role.UPDATE, max_message_size=300)
    into_round(machine)
    machine.next_request()
    machine.set_model(MODEL, 0.5)
    machine.next_request()
    machine.receive(SumsReceived(SUM_DICT))
    machine.next_request()
    machine.compute()
    sent = []
    for _ in range(2):
        post = machine.next_request()
        assert isinstance(post, Post)
        sent.append(post)
        machine.receive(PostResult(202, "chunk_buffered"))
    remaining = machine.next_request()
    assert isinstance(remaining, Post)
    assert remaining.part == 2

    again = restored(machine)
    assert again.state is State.SENDING_UPDATE
    assert again.next_request() == remaining, "the same bytes, not a new masking"
    posts = [*sent]
    while again.state is State.SENDING_UPDATE:
        post = again.next_request()
        assert isinstance(post, Post)
        posts.append(post)
        last = post.part == post.parts - 1
        events = again.receive(PostResult(202, "accepted" if last else "chunk_buffered"))
    assert events[-1] == MessageAccepted(
        3, Task.UPDATE, len(posts), sum(p.size for p in posts), "accepted"
    )


def test_an_updater_restored_with_its_model_but_no_sums() -> None:
    machine = machine_for(Role.UPDATE, max_weight=10)
    into_round(machine)
    assert isinstance(machine.next_request(), NeedModel)
    machine.set_model(MODEL, 5)
    again = restored(machine)
    assert not again.needs_model
    assert again.next_request() == FetchSums()


def test_an_updater_restored_before_its_model() -> None:
    machine = machine_for(Role.UPDATE)
    into_round(machine)
    machine.next_request()
    again = restored(machine)
    assert again.needs_model
    assert again.next_request() == NeedModel(PARAMS)


@pytest.mark.numpy
def test_a_numpy_model_survives_a_save() -> None:
    import numpy as np

    machine = machine_for(Role.UPDATE)
    into_round(machine)
    machine.next_request()
    machine.set_model(np.array(MODEL, dtype=np.float32))
    again = restored(machine)
    assert json.loads(again.save())["model"] == MODEL


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(format="other"), "not a saved"),
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.update(state="flying"), "flying"),
        (lambda d: d.update(signing_key_seed="00"), "participant state"),
        (lambda d: d.pop("bodies"), "bodies"),
        (lambda d: d.update(state="sending_update"), "no body left"),
        (lambda d: d.update(state="sum2"), "role"),
        (lambda d: d.update(params=None, state="update"), "without round parameters"),
        (lambda d: d.update(etag=5), "etag"),
    ],
)
def test_broken_states_are_refused(change: object, match: str) -> None:
    machine = machine_for(Role.UPDATE)
    into_round(machine)
    doc = json.loads(machine.save())
    change(doc)  # type: ignore[operator]
    with pytest.raises(DecodeError, match=match):
        ParticipantMachine.restore(json.dumps(doc).encode(), random_bytes=rng_bytes())


def test_a_state_whose_role_does_not_match_is_refused() -> None:
    machine = machine_for(Role.NONE)
    into_round(machine)
    doc = json.loads(machine.save())
    doc.update(state="update")
    with pytest.raises(DecodeError, match="role"):
        ParticipantMachine.restore(json.dumps(doc).encode(), random_bytes=rng_bytes())


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_decode_error_only(data: bytes) -> None:
    with pytest.raises(DecodeError):
        ParticipantMachine.restore(data, random_bytes=rng_bytes())


_SAVED = json.loads(machine_for(Role.UPDATE).save())


@given(
    key=st.sampled_from(sorted(_SAVED)),
    value=st.none() | st.integers() | st.text(max_size=10) | st.lists(st.integers(), max_size=2),
)
def test_any_corrupted_field_raises_decode_error_only(key: str, value: object) -> None:
    doc = dict(_SAVED, **{key: value})
    with contextlib.suppress(DecodeError):
        ParticipantMachine.restore(json.dumps(doc).encode(), random_bytes=rng_bytes())
