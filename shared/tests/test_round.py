from __future__ import annotations

import copy
import hashlib
import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xaynet.crypto import SigningKeyPair, verify
from xaynet.errors import ConfigError, DecodeError, LocalProtocolError
from xaynet.mask.config import BoundType, DataType, GroupType, MaskConfig, MaskConfigPair, ModelType
from xaynet.round import (
    INITIAL_ROUND_SEED,
    RoundParameters,
    next_round_seed,
    round_seed_verify_key,
)

DEFAULT = MaskConfigPair.uniform(MaskConfig.from_names("Prime", "F32", "B0", "M3"))


def params(**changes: Any) -> RoundParameters:
    values: dict[str, Any] = {
        "round_id": 1,
        "coordinator_pk": bytes(range(32)),
        "sum_probability": 0.5,
        "update_probability": 0.9,
        "seed": bytes(range(32, 64)),
        "mask_config": DEFAULT,
        "model_length": 4,
    }
    values.update(changes)
    return RoundParameters(**values)


configs = st.builds(
    MaskConfig,
    st.sampled_from(GroupType),
    st.sampled_from(DataType),
    st.sampled_from(BoundType),
    st.sampled_from(ModelType),
)
round_parameters = st.builds(
    RoundParameters,
    round_id=st.integers(0, 2**64 - 1),
    coordinator_pk=st.binary(min_size=32, max_size=32),
    sum_probability=st.floats(0, 1, exclude_min=True, exclude_max=True),
    update_probability=st.floats(0, 1, exclude_min=True),
    seed=st.binary(min_size=32, max_size=32),
    mask_config=st.builds(MaskConfigPair, configs, configs),
    model_length=st.integers(1, 2**32 - 1),
)


@given(round_parameters)
def test_json_round_trip(value: RoundParameters) -> None:
    text = json.dumps(value.to_json_dict())
    assert RoundParameters.from_json_dict(json.loads(text)) == value


def test_json_layout() -> None:
    assert params().to_json_dict() == {
        "round_id": 1,
        "coordinator_pk": bytes(range(32)).hex(),
        "sum_probability": 0.5,
        "update_probability": 0.9,
        "seed": bytes(range(32, 64)).hex(),
        "mask_config": {
            "vect": {
                "group_type": "Prime",
                "data_type": "F32",
                "bound_type": "B0",
                "model_type": "M3",
            },
            "unit": {
                "group_type": "Prime",
                "data_type": "F32",
                "bound_type": "B0",
                "model_type": "M3",
            },
        },
        "model_length": 4,
    }


def test_json_accepts_integer_probability_and_upper_case_hex() -> None:
    data = params(update_probability=1.0).to_json_dict()
    data["update_probability"] = 1
    data["seed"] = data["seed"].upper()
    assert RoundParameters.from_json_dict(data) == params(update_probability=1.0)


def mutated(path: tuple[str, ...], value: object) -> dict[str, Any]:
    data = copy.deepcopy(params().to_json_dict())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("round_id",), DELETE, "round_id"),
        (("round_id",), -1, "round_id"),
        (("round_id",), 2**64, "round_id"),
        (("round_id",), "1", "round_id"),
        (("round_id",), 1.0, "round_id"),
        (("round_id",), True, "round_id"),
        (("coordinator_pk",), "00" * 31, "coordinator_pk"),
        (("coordinator_pk",), "zz" * 32, "coordinator_pk"),
        (("coordinator_pk",), " " + "00" * 31 + "0", "coordinator_pk"),
        (("coordinator_pk",), list(range(32)), "coordinator_pk"),
        (("seed",), "00" * 33, "seed"),
        (("sum_probability",), 0, "sum_probability"),
        (("sum_probability",), 1.0, "sum_probability"),
        (("sum_probability",), "0.5", "sum_probability"),
        (("sum_probability",), math.nan, "sum_probability"),
        (("update_probability",), 0.0, "update_probability"),
        (("update_probability",), 1.5, "update_probability"),
        (("update_probability",), math.inf, "update_probability"),
        (("update_probability",), None, "update_probability"),
        (("mask_config",), "Prime/F32/B0/M3", "mask_config"),
        (("mask_config", "unit"), DELETE, "mask_config"),
        (("mask_config", "vect", "group_type"), "Prim", "mask_config.vect"),
        (("mask_config", "unit", "bound_type"), 0, "mask_config.unit"),
        (("mask_config", "unit", "extra"), "x", "mask_config.unit"),
        (("model_length",), 0, "model_length"),
        (("model_length",), 2**32, "model_length"),
        (("extra",), 1, "extra"),
    ],
)
def test_json_errors_name_the_field(path: tuple[str, ...], value: object, field: str) -> None:
    with pytest.raises(DecodeError, match=field.replace(".", r"\.")):
        RoundParameters.from_json_dict(mutated(path, value))


@pytest.mark.parametrize("data", [None, [], "params", 1])
def test_json_must_be_an_object(data: object) -> None:
    with pytest.raises(DecodeError):
        RoundParameters.from_json_dict(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"round_id": -1},
        {"round_id": 1.0},
        {"coordinator_pk": bytes(31)},
        {"coordinator_pk": "00" * 32},
        {"seed": bytes(33)},
        {"sum_probability": 0.0},
        {"sum_probability": 1.0},
        {"sum_probability": math.nan},
        {"update_probability": 0.0},
        {"update_probability": 1.0000000000000002},
        {"update_probability": -math.inf},
        {"mask_config": DEFAULT.vect},
        {"model_length": 0},
        {"model_length": True},
    ],
)
def test_constructor_validates(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        params(**changes)


def test_constructor_normalises() -> None:
    value = params(seed=bytearray(32), update_probability=1)
    assert type(value.seed) is bytes
    assert type(value.update_probability) is float
    with pytest.raises(AttributeError):
        value.round_id = 2  # type: ignore[misc]


# -- round seed --------------------------------------------------------------------------------


def test_initial_seed() -> None:
    assert bytes(32) == INITIAL_ROUND_SEED


def test_next_round_seed_construction() -> None:
    secret = bytes(range(100, 132))
    seed = next_round_seed(INITIAL_ROUND_SEED, secret, 0.5, 0.9)
    # Recompute from the documented recipe with the signing primitive directly.
    signature = SigningKeyPair.from_seed(secret).sign(
        INITIAL_ROUND_SEED + struct.pack("<d", 0.5) + struct.pack("<d", 0.9)
    )
    assert seed == hashlib.sha256(signature).digest()
    verify_key = round_seed_verify_key(secret)
    message = INITIAL_ROUND_SEED + (0.5).hex().encode()  # wrong encoding must not verify
    assert not verify(verify_key, message, signature)
    assert verify(verify_key, INITIAL_ROUND_SEED + struct.pack("<dd", 0.5, 0.9), signature)


@pytest.mark.pynacl
def test_next_round_seed_matches_libsodium() -> None:
    nacl_signing = pytest.importorskip("nacl.signing")
    secret = bytes(range(7, 39))
    previous = bytes(range(32))
    expected_sig = (
        nacl_signing.SigningKey(secret).sign(previous + struct.pack("<dd", 0.01, 0.1)).signature
    )
    assert next_round_seed(previous, secret, 0.01, 0.1) == hashlib.sha256(expected_sig).digest()
    assert round_seed_verify_key(secret) == bytes(nacl_signing.SigningKey(secret).verify_key)


def test_next_round_seed_depends_on_every_input() -> None:
    secret = bytes(range(32))
    base = next_round_seed(INITIAL_ROUND_SEED, secret, 0.5, 0.9)
    assert next_round_seed(INITIAL_ROUND_SEED, secret, 0.5, 0.9) == base
    assert next_round_seed(bytes(31) + b"\x01", secret, 0.5, 0.9) != base
    assert next_round_seed(INITIAL_ROUND_SEED, bytes(32), 0.5, 0.9) != base
    assert next_round_seed(INITIAL_ROUND_SEED, secret, 0.4, 0.9) != base
    assert next_round_seed(INITIAL_ROUND_SEED, secret, 0.5, 0.8) != base
    assert next_round_seed(INITIAL_ROUND_SEED, secret, 0.9, 0.5) != base
    assert len(base) == 32


@pytest.mark.parametrize(
    ("previous", "secret"), [(bytes(31), bytes(32)), (bytes(32), bytes(33)), (bytes(32), b"")]
)
def test_next_round_seed_rejects_bad_lengths(previous: bytes, secret: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        next_round_seed(previous, secret, 0.5, 0.5)
