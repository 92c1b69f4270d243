"""Decoders fed arbitrary or corrupted bytes raise only XaynetError subclasses.

A decoder that accepts mutated bytes must return a value whose encoding is exactly those bytes:
every structure has a single encoding, so nothing can change unnoticed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from message_strategies import messages

from xaynet import crypto
from xaynet.errors import XaynetError
from xaynet.message import (
    Chunk,
    LocalSeedDict,
    Message,
    Sum,
    Sum2,
    Tag,
    Update,
    decode_payload,
    open_message,
    parse_header,
)


def _set_length(data: bytes, length: int) -> bytes:
    if len(data) < 132:
        return data
    return data[:128] + struct.pack(">I", length % 2**32) + data[132:]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one to three random corruptions, biased towards the framing fields."""
    out = data
    for _ in range(draw(st.integers(1, 3))):
        n = len(out)
        # past the signature and keys: length, tag, flags and the payload's own framing
        position = st.one_of(st.integers(0, n - 1), st.integers(min(128, n - 1), n - 1))
        kind = draw(st.sampled_from(["truncate", "cut_tail", "extend", "flip", "length", "splice"]))
        if kind == "truncate" and out:
            out = out[: draw(st.integers(0, n - 1))]
        elif kind == "cut_tail" and out:
            out = out[: n - draw(st.integers(1, min(n, 130)))]
        elif kind == "extend":
            out = out + draw(st.binary(min_size=1, max_size=200))
        elif kind == "flip" and out:
            i = draw(position)
            out = out[:i] + bytes([out[i] ^ draw(st.integers(1, 255))]) + out[i + 1 :]
        elif kind == "length":
            out = _set_length(out, draw(st.integers(0, 2**32 - 1)))
        elif kind == "splice" and out:
            i = draw(position)
            j = draw(st.integers(i, min(n, i + 64)))
            out = out[:i] + draw(st.binary(max_size=64)) + out[j:]
        # Usually repair the length field so that the corruption reaches the payload parsers.
        if kind != "length" and draw(st.integers(0, 3)):
            out = _set_length(out, len(out))
    return out


def _decode_or_error(decode: Callable[[bytes], object], data: bytes) -> object | None:
    try:
        return decode(data)
    except XaynetError:
        return None


DECODERS: list[Callable[[bytes], object]] = [
    parse_header,
    Message.decode_unverified,
    Sum.from_bytes,
    Update.from_bytes,
    Sum2.from_bytes,
    Chunk.from_bytes,
    LocalSeedDict.from_bytes,
    *(lambda d, t=t: decode_payload(t, d) for t in Tag),
]


@pytest.mark.parametrize("decode", DECODERS)
@given(data=st.binary(max_size=600))
@example(data=b"")
@example(data=b"\xff" * 300)
def test_random_bytes(decode: Callable[[bytes], object], data: bytes) -> None:
    _decode_or_error(decode, data)


@given(data=st.binary(max_size=400), tag=st.integers(0, 255), flags=st.integers(0, 255))
def test_random_payload_behind_a_valid_looking_header(data: bytes, tag: int, flags: int) -> None:
    header = b"\0" * 128 + struct.pack(">IBB", 136 + len(data), tag, flags) + b"\0\0"
    message = _decode_or_error(Message.decode_unverified, header + data)
    if message is not None:
        assert isinstance(message, Message)
        assert message.to_unsigned_bytes() == (header + data)[64:]


@given(st.data())
@settings(max_examples=300)
def test_mutated_messages_unverified(data: st.DataObject) -> None:
    message = data.draw(messages())
    original = b"\x55" * 64 + message.to_unsigned_bytes()
    corrupted = data.draw(mutated(original))
    decoded = _decode_or_error(Message.decode_unverified, corrupted)
    if decoded is not None:
        assert isinstance(decoded, Message)
        assert decoded.to_unsigned_bytes() == corrupted[64:]


@given(st.data())
@settings(max_examples=200)
def test_mutated_seed_dicts(data: st.DataObject) -> None:
    from message_strategies import seed_dicts

    original = data.draw(seed_dicts()).to_bytes()
    corrupted = data.draw(mutated(original))
    decoded = _decode_or_error(LocalSeedDict.from_bytes, corrupted)
    if decoded is not None:
        assert isinstance(decoded, LocalSeedDict)
        assert decoded.to_bytes() == corrupted


@given(data=st.data())
@settings(max_examples=150)
def test_mutated_signed_messages(
    participant_key: crypto.SigningKeyPair, data: st.DataObject
) -> None:
    message = data.draw(messages(participant_pk=participant_key.public))
    original = message.to_bytes(participant_key)
    corrupted = data.draw(mutated(original))
    decoded = _decode_or_error(Message.from_bytes, corrupted)
    # Any change to a signed message breaks its signature or its framing (a mutation can undo
    # itself, e.g. a splice that writes back the same bytes).
    assert decoded == (message if corrupted == original else None)


@given(data=st.binary(max_size=500))
def test_open_random_bytes(round_keys: crypto.EncryptKeyPair, data: bytes) -> None:
    assert _decode_or_error(lambda d: open_message(d, round_keys), data) is None
