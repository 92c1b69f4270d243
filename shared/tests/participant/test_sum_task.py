from __future__ import annotations

import pytest

from participant._fixtures import CONFIG, ROUND_KEYS, make_params, with_role
from xaynet.crypto import EncryptKeyPair, seal
from xaynet.errors import DecodeError, LocalProtocolError
from xaynet.mask import derive_mask
from xaynet.message import Message, Sum, Sum2
from xaynet.participant import Role, SeedDecryptionError, SumTask

PARAMS = make_params()
SUMMER, SUM_DECISION = with_role(Role.SUM, PARAMS)
EPHEMERAL_SEED = bytes(range(50, 82))


def task() -> SumTask:
    return SumTask(SUMMER, PARAMS, SUM_DECISION, EPHEMERAL_SEED)


def updater_seeds(count: int) -> dict[bytes, bytes]:
    """updater pk -> 32-byte mask seed (the pks are arbitrary: only their seeds matter)."""
    return {bytes([i + 1]) * 32: bytes([i + 7]) * 32 for i in range(count)}


def test_ephemeral_keys_come_from_the_seed() -> None:
    assert task().ephemeral_keys == EncryptKeyPair.from_seed(EPHEMERAL_SEED)
    assert task().ephemeral_pk == EncryptKeyPair.from_seed(EPHEMERAL_SEED).public
    other = SumTask(SUMMER, PARAMS, SUM_DECISION, bytes(32))
    assert other.ephemeral_pk != task().ephemeral_pk
    assert EPHEMERAL_SEED.hex() not in repr(task())


def test_sum_message() -> None:
    message = task().sum_message()
    assert message == Message(
        SUMMER.public, ROUND_KEYS.public, Sum(SUM_DECISION.sum_signature, task().ephemeral_pk)
    )
    assert Message.from_bytes(message.to_bytes(SUMMER)) == message


@pytest.mark.parametrize("count", [1, 3])
def test_sum2_message_adds_every_mask(count: int) -> None:
    seeds = updater_seeds(count)
    sealed = {pk: seal(task().ephemeral_pk, seed) for pk, seed in seeds.items()}
    message = task().sum2_message(sealed)
    assert isinstance(message.payload, Sum2)
    assert message.payload.sum_signature == SUM_DECISION.sum_signature
    assert message.participant_pk == SUMMER.public
    assert message.coordinator_pk == ROUND_KEYS.public
    mask = message.payload.model_mask
    # Independent sum of the derived masks, element by element.
    derived = [derive_mask(s, config=CONFIG, length=PARAMS.model_length) for s in seeds.values()]
    q_vect, q_unit = CONFIG.vect.order, CONFIG.unit.order
    expected_vect = [
        sum(column) % q_vect for column in zip(*(d.vect.elements() for d in derived), strict=True)
    ]
    assert mask.vect.elements() == expected_vect
    assert mask.unit.value == sum(d.unit.value for d in derived) % q_unit
    assert mask.config == CONFIG
    assert len(mask) == PARAMS.model_length
    assert Message.from_bytes(message.to_bytes(SUMMER)) == message


def test_sum2_mask_does_not_depend_on_order() -> None:
    seeds = updater_seeds(3)
    sealed = {pk: seal(task().ephemeral_pk, seed) for pk, seed in seeds.items()}
    reverse = dict(reversed(list(sealed.items())))
    assert task().model_mask(sealed) == task().model_mask(reverse)


def test_seed_for_another_key_names_the_updater() -> None:
    seeds = updater_seeds(2)
    sealed = {pk: seal(task().ephemeral_pk, seed) for pk, seed in seeds.items()}
    culprit = bytes([9]) * 32
    sealed[culprit] = seal(EncryptKeyPair.from_seed(bytes(32)).public, bytes(32))
    with pytest.raises(SeedDecryptionError) as info:
        task().sum2_message(sealed)
    assert info.value.updater_pk == culprit


@pytest.mark.parametrize("plaintext", [bytes(31), bytes(33), b""])
def test_seed_of_wrong_length_names_the_updater(plaintext: bytes) -> None:
    culprit = bytes([9]) * 32
    with pytest.raises(SeedDecryptionError) as info:
        task().model_mask({culprit: seal(task().ephemeral_pk, plaintext)})
    assert info.value.updater_pk == culprit


def test_tampered_seed_is_rejected() -> None:
    box = bytearray(seal(task().ephemeral_pk, bytes(32)))
    box[-1] ^= 1
    with pytest.raises(SeedDecryptionError):
        task().model_mask({bytes(32): bytes(box)})


@pytest.mark.parametrize(
    "column", [{}, {bytes(31): bytes(80)}, {"updater": bytes(80)}], ids=["empty", "short", "str"]
)
def test_malformed_column(column: dict[object, bytes]) -> None:
    with pytest.raises(DecodeError):
        task().model_mask(column)  # type: ignore[arg-type]


def test_task_requires_a_sum_decision() -> None:
    updater, update_decision = with_role(Role.UPDATE, PARAMS)
    with pytest.raises(LocalProtocolError):
        SumTask(updater, PARAMS, update_decision, EPHEMERAL_SEED)
    other_summer, other_decision = with_role(Role.SUM, PARAMS, skip=1)
    with pytest.raises(LocalProtocolError):
        SumTask(SUMMER, PARAMS, other_decision, EPHEMERAL_SEED)
    assert other_summer != SUMMER


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), "0" * 32])
def test_task_requires_a_32_byte_ephemeral_seed(seed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        SumTask(SUMMER, PARAMS, SUM_DECISION, seed)
