"""Decoding the coordinator's JSON answers, shared by every transport."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xaynet.errors import DecodeError
from xaynet.participant.transport import (
    GlobalModel,
    PostOutcome,
    decode_global_model,
    decode_key_map,
    decode_post_outcome,
)

PK = "ab" * 32


def test_key_maps() -> None:
    assert decode_key_map({PK: "00ff"}, "sums") == {bytes.fromhex(PK): b"\x00\xff"}
    assert decode_key_map({}, "sums") == {}


@pytest.mark.parametrize(
    "data",
    [
        [PK],
        {PK.upper(): "00"},
        {"ab" * 31: "00"},
        {PK: "0"},
        {PK: ""},
        {PK: 5},
        {PK: " 00"},
    ],
)
def test_malformed_key_maps(data: object) -> None:
    with pytest.raises(DecodeError, match="seeds"):
        decode_key_map(data, "seeds")


@given(st.dictionaries(st.text(max_size=70), st.text(max_size=10)) | st.lists(st.integers()))
def test_key_maps_never_raise_anything_else(data: object) -> None:
    with contextlib.suppress(DecodeError):
        decode_key_map(data, "x")


def test_post_outcomes() -> None:
    body = {"status": 409, "reason": "wrong_phase", "detail": "late"}
    assert decode_post_outcome(409, body) == PostOutcome(409, "wrong_phase", "late")
    assert decode_post_outcome(202, {"reason": "accepted"}) == PostOutcome(202, "accepted")
    assert decode_post_outcome(202, {"reason": "accepted", "detail": 3}) == PostOutcome(
        202, "accepted"
    )
    assert decode_post_outcome(502, "<html>") is None
    assert decode_post_outcome(502, {"detail": "proxy"}) is None
    assert decode_post_outcome(502, {"reason": ""}) is None


def test_global_models() -> None:
    model = decode_global_model({"round_id": 3, "model_id": "3_ab", "model": [1, 0.5]})
    assert model.key == (3, "3_ab")
    assert model.values == [1.0, 0.5]
    assert decode_global_model({"round_id": 0, "model_id": None, "model": []}).model_id is None


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"round_id": -1, "model_id": None, "model": []},
        {"round_id": True, "model_id": None, "model": []},
        {"round_id": 1, "model_id": 5, "model": []},
        {"round_id": 1, "model_id": None, "model": [True]},
        {"round_id": 1, "model_id": None, "model": "1,2"},
        {"round_id": 1, "model_id": None},
    ],
)
def test_malformed_global_models(data: object) -> None:
    with pytest.raises(DecodeError, match="global model"):
        decode_global_model(data)


def test_value_types_check_their_fields() -> None:
    with pytest.raises(TypeError):
        PostOutcome("202", "accepted")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        GlobalModel("1", None, [])  # type: ignore[arg-type]
