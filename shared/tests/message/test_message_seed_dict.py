from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from message_strategies import seed_dict, seed_dicts

from xaynet.errors import DecodeError, LocalProtocolError
from xaynet.message import LocalSeedDict

A, B, C = (bytes([i]) * 32 for i in (1, 2, 3))
SA, SB, SC = (bytes([i]) * 80 for i in (11, 12, 13))


def test_mapping_interface_keeps_order() -> None:
    d = LocalSeedDict([(B, SB), (A, SA), (C, SC)])
    assert len(d) == 3
    assert list(d) == [B, A, C]
    assert list(d.items()) == [(B, SB), (A, SA), (C, SC)]
    assert d[A] == SA
    assert A in d
    assert b"\0" * 32 not in d
    assert d.get(b"\0" * 32) is None
    with pytest.raises(KeyError):
        d[b"\0" * 32]


def test_built_from_a_mapping() -> None:
    assert LocalSeedDict({A: SA, B: SB}) == LocalSeedDict([(A, SA), (B, SB)])


def test_equality_and_hash_follow_the_encoding() -> None:
    ab = LocalSeedDict([(A, SA), (B, SB)])
    assert ab == LocalSeedDict([(A, SA), (B, SB)])
    assert hash(ab) == hash(LocalSeedDict([(A, SA), (B, SB)]))
    assert ab != LocalSeedDict([(B, SB), (A, SA)])
    assert ab != LocalSeedDict([(A, SA), (B, SC)])


def test_immutable() -> None:
    d = LocalSeedDict([(A, SA)])
    with pytest.raises(AttributeError):
        d._entries = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        d[B] = SB  # type: ignore[index]


def test_encoding_layout() -> None:
    d = LocalSeedDict([(A, SA), (B, SB)])
    data = d.to_bytes()
    assert data == struct.pack(">I", 4 + 2 * 112) + A + SA + B + SB
    assert d.byte_length == len(data) == 228
    assert LocalSeedDict().to_bytes() == b"\0\0\0\4"


@pytest.mark.parametrize(
    "entries",
    [
        [(A, SA), (A, SB)],
        [(A[:31], SA)],
        [(A, SA + b"\0")],
        [(A, "x" * 80)],
        [(A,)],
        [A],
        [(A, SA, SB)],
    ],
)
def test_invalid_entries(entries: list[object]) -> None:
    with pytest.raises(LocalProtocolError):
        LocalSeedDict(entries)  # type: ignore[arg-type]


@given(seed_dicts(max_size=8), st.binary(max_size=20), st.binary(max_size=20))
def test_round_trip_at_offset(d: LocalSeedDict, before: bytes, after: bytes) -> None:
    data = before + d.to_bytes() + after
    decoded, end = LocalSeedDict.decode(data, len(before))
    assert decoded == d
    assert list(decoded.items()) == list(d.items())
    assert end == len(before) + d.byte_length
    assert LocalSeedDict.from_bytes(d.to_bytes()) == d


def test_large_dict_round_trip() -> None:
    d = seed_dict(1000)
    assert LocalSeedDict.from_bytes(d.to_bytes()) == d
    assert d.byte_length == 4 + 112 * 1000


@pytest.mark.parametrize("total", [0, 1, 3, 5, 115, 117, 4 + 112 * 3])
def test_bad_length_field(total: int) -> None:
    body = A + SA + B + SB
    with pytest.raises(DecodeError, match="seed dict"):
        LocalSeedDict.from_bytes(struct.pack(">I", total) + body)


def test_truncated() -> None:
    data = LocalSeedDict([(A, SA), (B, SB)]).to_bytes()
    for size in range(len(data)):
        with pytest.raises(DecodeError):
            LocalSeedDict.from_bytes(data[:size])


def test_trailing_bytes() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        LocalSeedDict.from_bytes(LocalSeedDict([(A, SA)]).to_bytes() + b"\0")


def test_duplicate_keys_on_the_wire() -> None:
    data = struct.pack(">I", 4 + 2 * 112) + A + SA + A + SB
    with pytest.raises(DecodeError, match="duplicate"):
        LocalSeedDict.from_bytes(data)
