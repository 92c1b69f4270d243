from __future__ import annotations

import struct

import pytest
from hypothesis import given
from message_strategies import COORDINATOR_PK, PK, mask_object, messages, seed_dict

from xaynet import crypto
from xaynet.errors import (
    DecodeError,
    DecryptionError,
    LocalProtocolError,
    SignatureError,
)
from xaynet.message import (
    HEADER_LENGTH,
    SEAL_OVERHEAD,
    Chunk,
    Message,
    Sum,
    Sum2,
    Tag,
    Update,
    open_message,
    parse_header,
    seal_message,
    verify_signature,
)

SIG1 = b"\x01" * 64
SIG2 = b"\x02" * 64
EPHM = b"\x03" * 32


def sum_message(key: crypto.SigningKeyPair, coordinator_pk: bytes) -> Message:
    return Message(key.public, coordinator_pk, Sum(SIG1, EPHM))


# -- construction ------------------------------------------------------------------------------


def test_tag_follows_payload() -> None:
    assert Message(PK, COORDINATOR_PK, Sum(SIG1, EPHM)).tag is Tag.SUM
    update = Update(SIG1, SIG2, mask_object(2), seed_dict(1))
    assert Message(PK, COORDINATOR_PK, update, Tag.UPDATE).tag is Tag.UPDATE
    assert Message(PK, COORDINATOR_PK, Sum2(SIG1, mask_object(2)), 3).tag is Tag.SUM2  # type: ignore[arg-type]
    assert not Message(PK, COORDINATOR_PK, Sum(SIG1, EPHM)).is_multipart


def test_chunk_message_needs_a_tag() -> None:
    chunk = Chunk(0, 7, True, b"x")
    with pytest.raises(LocalProtocolError, match="tag"):
        Message(PK, COORDINATOR_PK, chunk)
    message = Message(PK, COORDINATOR_PK, chunk, Tag.UPDATE)
    assert message.tag is Tag.UPDATE
    assert message.is_multipart


@pytest.mark.parametrize(
    ("pk", "cpk", "payload", "tag"),
    [
        (PK, COORDINATOR_PK, Sum(SIG1, EPHM), Tag.UPDATE),
        (PK, COORDINATOR_PK, Sum(SIG1, EPHM), 9),
        (PK, COORDINATOR_PK, Chunk(0, 0, True, b"x"), 0),
        (PK, COORDINATOR_PK, b"payload", None),
        (PK[:31], COORDINATOR_PK, Sum(SIG1, EPHM), None),
        (PK, COORDINATOR_PK + b"\0", Sum(SIG1, EPHM), None),
    ],
)
def test_invalid_messages(pk: bytes, cpk: bytes, payload: object, tag: object) -> None:
    with pytest.raises(LocalProtocolError):
        Message(pk, cpk, payload, tag)  # type: ignore[arg-type]


def test_frozen() -> None:
    message = Message(PK, COORDINATOR_PK, Sum(SIG1, EPHM))
    with pytest.raises(AttributeError):
        message.tag = Tag.SUM2  # type: ignore[misc]
    assert message == Message(bytearray(PK), COORDINATOR_PK, Sum(SIG1, EPHM))  # type: ignore[arg-type]
    assert hash(message) == hash(Message(PK, COORDINATOR_PK, Sum(SIG1, EPHM)))


# -- encoding ----------------------------------------------------------------------------------


def test_sum_message_bytes(participant_key: crypto.SigningKeyPair) -> None:
    message = sum_message(participant_key, COORDINATOR_PK)
    data = message.to_bytes(participant_key)
    assert len(data) == message.byte_length == 232
    assert data[64:96] == participant_key.public
    assert data[96:128] == COORDINATOR_PK
    assert data[128:136] == struct.pack(">IBB", 232, 1, 0) + b"\0\0"
    assert data[136:] == SIG1 + EPHM
    assert data[64:] == message.to_unsigned_bytes()
    # the signature covers exactly bytes [64, length)
    assert crypto.verify(participant_key.public, data[64:], data[:64])
    assert not crypto.verify(participant_key.public, data[63:], data[:64])


def test_chunk_message_bytes(participant_key: crypto.SigningKeyPair) -> None:
    message = Message(participant_key.public, COORDINATOR_PK, Chunk(3, 9, False, b"abc"), Tag.SUM2)
    data = message.to_bytes(participant_key)
    assert data[128:136] == struct.pack(">IBB", 136 + 11, 3, 1) + b"\0\0"
    assert data[136:] == b"\0\3\0\x09\0\0\0\0abc"


def test_encoding_is_deterministic(participant_key: crypto.SigningKeyPair) -> None:
    message = sum_message(participant_key, COORDINATOR_PK)
    assert message.to_bytes(participant_key) == message.to_bytes(participant_key)


def test_signing_key_must_match(
    participant_key: crypto.SigningKeyPair, other_participant_key: crypto.SigningKeyPair
) -> None:
    with pytest.raises(LocalProtocolError, match="signing key"):
        sum_message(participant_key, COORDINATOR_PK).to_bytes(other_participant_key)


@given(messages())
def test_round_trip_unverified(message: Message) -> None:
    data = b"\xaa" * 64 + message.to_unsigned_bytes()
    assert Message.decode_unverified(data) == message
    header = parse_header(data)
    assert (header.tag, header.is_multipart) == (message.tag, message.is_multipart)
    assert header.length == len(data) == message.byte_length


@given(data=messages(participant_pk=bytes(32)))
def test_round_trip_verified(participant_key: crypto.SigningKeyPair, data: Message) -> None:
    message = Message(participant_key.public, data.coordinator_pk, data.payload, data.tag)
    encoded = message.to_bytes(participant_key)
    assert Message.from_bytes(encoded) == message
    assert Message.from_bytes(memoryview(encoded)) == message


# -- verification ------------------------------------------------------------------------------


def test_any_flipped_bit_is_rejected(participant_key: crypto.SigningKeyPair) -> None:
    update = Update(SIG1, SIG2, mask_object(2), seed_dict(1))
    data = Message(participant_key.public, COORDINATOR_PK, update).to_bytes(participant_key)
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x10
        with pytest.raises((SignatureError, DecodeError)):
            Message.from_bytes(bytes(tampered))


def test_signature_checked_before_payload(participant_key: crypto.SigningKeyPair) -> None:
    unsigned = PK + COORDINATOR_PK + struct.pack(">IBB", 146, 1, 0) + b"\0\0" + b"z" * 10
    unsigned = participant_key.public + unsigned[32:]
    with pytest.raises(SignatureError):
        Message.from_bytes(b"\0" * 64 + unsigned)
    # properly signed but a 10-byte Sum payload: now the payload parser speaks
    with pytest.raises(DecodeError, match="Sum"):
        Message.from_bytes(participant_key.sign(unsigned) + unsigned)


def test_resigned_by_another_key_is_rejected(
    participant_key: crypto.SigningKeyPair, other_participant_key: crypto.SigningKeyPair
) -> None:
    data = sum_message(participant_key, COORDINATOR_PK).to_bytes(participant_key)
    forged = other_participant_key.sign(data[64:]) + data[64:]
    with pytest.raises(SignatureError):
        Message.from_bytes(forged)
    with pytest.raises(SignatureError):
        verify_signature(forged, parse_header(forged))


def test_unverified_decode_ignores_the_signature(participant_key: crypto.SigningKeyPair) -> None:
    message = sum_message(participant_key, COORDINATOR_PK)
    data = b"\0" * 64 + message.to_bytes(participant_key)[64:]
    assert Message.decode_unverified(data) == message


# -- sealing -----------------------------------------------------------------------------------


def test_seal_and_open(
    participant_key: crypto.SigningKeyPair, round_keys: crypto.EncryptKeyPair
) -> None:
    message = sum_message(participant_key, round_keys.public)
    data = message.to_bytes(participant_key)
    sealed = seal_message(data, round_keys.public)
    assert len(sealed) == len(data) + SEAL_OVERHEAD == 280
    assert open_message(sealed, round_keys) == data
    assert Message.from_bytes(open_message(sealed, round_keys)) == message


def test_open_with_wrong_key(
    participant_key: crypto.SigningKeyPair,
    round_keys: crypto.EncryptKeyPair,
    other_round_keys: crypto.EncryptKeyPair,
) -> None:
    data = sum_message(participant_key, round_keys.public).to_bytes(participant_key)
    sealed = seal_message(data, round_keys.public)
    with pytest.raises(DecryptionError):
        open_message(sealed, other_round_keys)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        open_message(bytes(tampered), round_keys)


def test_open_rejects_boxes_too_short_for_a_message(round_keys: crypto.EncryptKeyPair) -> None:
    with pytest.raises(DecodeError):
        open_message(b"\0" * (SEAL_OVERHEAD + HEADER_LENGTH - 1), round_keys)
    # long enough to hold a header: goes to decryption
    with pytest.raises(DecryptionError):
        open_message(b"\0" * (SEAL_OVERHEAD + HEADER_LENGTH), round_keys)


def test_seal_to_the_named_coordinator_only(
    participant_key: crypto.SigningKeyPair,
    round_keys: crypto.EncryptKeyPair,
    other_round_keys: crypto.EncryptKeyPair,
) -> None:
    data = sum_message(participant_key, round_keys.public).to_bytes(participant_key)
    with pytest.raises(LocalProtocolError, match="coordinator"):
        seal_message(data, other_round_keys.public)
    with pytest.raises(LocalProtocolError, match="not an encoded message"):
        seal_message(data[:-1], round_keys.public)


def test_resealed_to_another_round_is_detected(
    participant_key: crypto.SigningKeyPair,
    round_keys: crypto.EncryptKeyPair,
    other_round_keys: crypto.EncryptKeyPair,
) -> None:
    # Whoever opens a message can re-seal it to another key, but the signed header still names
    # the original round key, which the receiving coordinator compares with its own.
    data = sum_message(participant_key, round_keys.public).to_bytes(participant_key)
    resealed = crypto.seal(other_round_keys.public, data)
    message = Message.from_bytes(open_message(resealed, other_round_keys))
    assert message.coordinator_pk == round_keys.public != other_round_keys.public


# -- sizes (spec 4.4) --------------------------------------------------------------------------


def test_sizes(participant_key: crypto.SigningKeyPair, round_keys: crypto.EncryptKeyPair) -> None:
    pk, cpk = participant_key.public, round_keys.public
    cases = [
        (Message(pk, cpk, Sum(SIG1, EPHM)), 232, 280),
        (Message(pk, cpk, Update(SIG1, SIG2, mask_object(4), seed_dict(1))), 422, 470),
        (Message(pk, cpk, Sum2(SIG1, mask_object(4))), 242, 290),
    ]
    for message, plain, sealed in cases:
        data = message.to_bytes(participant_key)
        assert len(data) == message.byte_length == plain
        assert len(seal_message(data, cpk)) == sealed
