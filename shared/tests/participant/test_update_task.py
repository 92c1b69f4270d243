from __future__ import annotations

import pytest

from participant._fixtures import CONFIG, ROUND_KEYS, make_params, with_role
from xaynet.crypto import EncryptKeyPair
from xaynet.errors import DecodeError, LocalProtocolError, ModelError
from xaynet.mask import mask_model
from xaynet.message import SEALED_SEED_LENGTH, Message, Update
from xaynet.participant import Role, UpdateTask

PARAMS = make_params()
UPDATER, UPDATE_DECISION = with_role(Role.UPDATE, PARAMS)
MASK_SEED = bytes(range(1, 33))
MODEL = [0.5, -0.25, 1.0, 0.0]
EPHEMERAL = [EncryptKeyPair.from_seed(bytes([i]) * 32) for i in range(3)]
SUM_DICT = {bytes([40 - i]) * 32: keys.public for i, keys in enumerate(EPHEMERAL)}


def task() -> UpdateTask:
    return UpdateTask(UPDATER, PARAMS, UPDATE_DECISION)


def test_update_message() -> None:
    message = task().update_message(MODEL, scalar=2, mask_seed=MASK_SEED, sum_dict=SUM_DICT)
    assert message.participant_pk == UPDATER.public
    assert message.coordinator_pk == ROUND_KEYS.public
    payload = message.payload
    assert isinstance(payload, Update)
    assert payload.sum_signature == UPDATE_DECISION.sum_signature
    assert payload.update_signature == UPDATE_DECISION.update_signature
    assert payload.masked_model == mask_model(MASK_SEED, MODEL, config=CONFIG, scalar=2)
    # Every summer can open the seed with its ephemeral key.
    assert set(payload.local_seed_dict) == set(SUM_DICT)
    for (summer_pk, ephm_pk), keys in zip(SUM_DICT.items(), EPHEMERAL, strict=True):
        assert ephm_pk == keys.public
        sealed = payload.local_seed_dict[summer_pk]
        assert len(sealed) == SEALED_SEED_LENGTH
        assert keys.open(sealed) == MASK_SEED
    # Sorted by summer key, whatever the order of the sum dict.
    assert list(payload.local_seed_dict) == sorted(SUM_DICT)
    assert Message.from_bytes(message.to_bytes(UPDATER)) == message


def test_masked_model_hides_the_model() -> None:
    one = task().masked_model(MODEL, mask_seed=MASK_SEED)
    other = task().masked_model(MODEL, mask_seed=bytes(32))
    assert one != other
    assert task().masked_model(MODEL, mask_seed=MASK_SEED) == one


@pytest.mark.parametrize("model", [MODEL[:3], [*MODEL, 0.0], []], ids=["short", "long", "empty"])
def test_model_of_wrong_length(model: list[float]) -> None:
    with pytest.raises(ModelError, match="4"):
        task().update_message(model, mask_seed=MASK_SEED, sum_dict=SUM_DICT)


@pytest.mark.parametrize("model", [iter(MODEL), 0.5, None], ids=["iterator", "float", "none"])
def test_model_that_is_not_a_sequence(model: object) -> None:
    with pytest.raises(ModelError):
        task().update_message(model, mask_seed=MASK_SEED, sum_dict=SUM_DICT)


@pytest.mark.parametrize("model", [[0.5, float("nan"), 0, 0], [0.5, "x", 0, 0]])
def test_model_with_bad_values(model: list[object]) -> None:
    with pytest.raises(ModelError):
        task().update_message(model, mask_seed=MASK_SEED, sum_dict=SUM_DICT)


@pytest.mark.parametrize("scalar", [-1, float("nan"), float("inf")])
def test_bad_scalar(scalar: float) -> None:
    with pytest.raises(ModelError):
        task().update_message(MODEL, scalar=scalar, mask_seed=MASK_SEED, sum_dict=SUM_DICT)


@pytest.mark.parametrize(
    "sum_dict",
    [{}, {bytes(31): bytes(32)}, {bytes(32): bytes(33)}, {"summer": bytes(32)}],
    ids=["empty", "short-pk", "long-ephm", "str"],
)
def test_bad_sum_dict(sum_dict: dict[object, bytes]) -> None:
    with pytest.raises(DecodeError):
        task().update_message(MODEL, mask_seed=MASK_SEED, sum_dict=sum_dict)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [bytes(31), b"", "x" * 32])
def test_bad_mask_seed(seed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        task().update_message(MODEL, mask_seed=seed, sum_dict=SUM_DICT)


def test_task_requires_an_update_decision() -> None:
    summer, sum_decision = with_role(Role.SUM, PARAMS)
    with pytest.raises(LocalProtocolError):
        UpdateTask(summer, PARAMS, sum_decision)
    idle, idle_decision = with_role(Role.NONE, PARAMS)
    with pytest.raises(LocalProtocolError):
        UpdateTask(idle, PARAMS, idle_decision)
    with pytest.raises(LocalProtocolError):
        UpdateTask(idle, PARAMS, UPDATE_DECISION)


@pytest.mark.numpy
def test_numpy_model() -> None:
    import numpy as np

    array = np.asarray(MODEL, dtype=np.float32)
    assert task().masked_model(array, mask_seed=MASK_SEED) == task().masked_model(
        MODEL, mask_seed=MASK_SEED
    )
    with pytest.raises(ModelError):
        task().masked_model(array[:3], mask_seed=MASK_SEED)
