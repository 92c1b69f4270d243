from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from message_strategies import chunks, mask_object, seed_dict, sum2s, sums, updates

from xaynet.errors import DecodeError, LocalProtocolError
from xaynet.message import Chunk, LocalSeedDict, Payload, Sum, Sum2, Tag, Update, decode_payload

SIG1 = b"\x01" * 64
SIG2 = b"\x02" * 64
EPHM = b"\x03" * 32


@given(st.one_of(sums, updates, sum2s, chunks))
def test_round_trip(payload: Payload) -> None:
    data = payload.to_bytes()
    assert len(data) == payload.byte_length
    assert type(payload).from_bytes(data) == payload
    if isinstance(payload, Chunk):
        assert decode_payload(Tag.SUM2, data, multipart=True) == payload
    else:
        assert decode_payload(payload.TAG, data) == payload
        assert decode_payload(payload.TAG, bytearray(data)) == payload


def test_tags() -> None:
    assert (Sum.TAG, Update.TAG, Sum2.TAG) == (Tag.SUM, Tag.UPDATE, Tag.SUM2)


def test_sum_layout() -> None:
    s = Sum(SIG1, EPHM)
    assert s.to_bytes() == SIG1 + EPHM
    assert s.byte_length == 96


def test_update_layout_and_size() -> None:
    model = mask_object(4)
    seeds = seed_dict(1)
    u = Update(SIG1, SIG2, model, seeds)
    assert u.to_bytes() == SIG1 + SIG2 + model.to_bytes() + seeds.to_bytes()
    # spec 4.4: default config (6 bytes per element), n = 4, one summer
    assert u.byte_length == 128 + 42 + 116 == 286


def test_sum2_layout_and_size() -> None:
    s = Sum2(SIG1, mask_object(4))
    assert s.to_bytes() == SIG1 + mask_object(4).to_bytes()
    assert s.byte_length == 106


def test_chunk_layout() -> None:
    c = Chunk(0x0102, 0xA0B0, True, b"data")
    assert c.to_bytes() == b"\x01\x02\xa0\xb0\x01\x00\x00\x00data"
    assert Chunk(1, 2, False, b"x").to_bytes()[4] == 0
    assert c.byte_length == 12


@pytest.mark.parametrize("size", [0, 95, 97, 200])
def test_sum_wrong_size(size: int) -> None:
    with pytest.raises(DecodeError, match="96"):
        Sum.from_bytes(b"\0" * size)


def test_update_truncated_anywhere() -> None:
    data = Update(SIG1, SIG2, mask_object(3), seed_dict(2)).to_bytes()
    for size in range(len(data)):
        with pytest.raises(DecodeError):
            Update.from_bytes(data[:size])


def test_sum2_truncated_anywhere() -> None:
    data = Sum2(SIG1, mask_object(3)).to_bytes()
    for size in range(len(data)):
        with pytest.raises(DecodeError):
            Sum2.from_bytes(data[:size])


def test_trailing_bytes() -> None:
    update = Update(SIG1, SIG2, mask_object(3), seed_dict(1)).to_bytes()
    with pytest.raises(DecodeError, match="trailing"):
        Update.from_bytes(update + b"\0")
    sum2 = Sum2(SIG1, mask_object(3)).to_bytes()
    with pytest.raises(DecodeError, match="trailing"):
        Sum2.from_bytes(sum2 + b"\0")


def test_update_seed_dict_must_end_the_payload() -> None:
    # A seed dict length that claims fewer entries than follow leaves trailing bytes.
    body = SIG1 + SIG2 + mask_object(2).to_bytes()
    data = body + struct.pack(">I", 4 + 112) + b"\1" * 224
    with pytest.raises(DecodeError, match="trailing"):
        Update.from_bytes(data)


def test_bad_mask_config_is_a_decode_error() -> None:
    data = bytearray(Sum2(SIG1, mask_object(2)).to_bytes())
    data[64] = 9  # unknown group type
    with pytest.raises(DecodeError, match="config"):
        Sum2.from_bytes(bytes(data))


@pytest.mark.parametrize("size", [0, 1, 7, 8])
def test_chunk_too_short(size: int) -> None:
    with pytest.raises(DecodeError, match="chunk"):
        Chunk.from_bytes(b"\0" * size)


@pytest.mark.parametrize("flags", [2, 3, 0x80, 0xFF])
def test_chunk_unknown_flags(flags: int) -> None:
    with pytest.raises(DecodeError, match="flags"):
        Chunk.from_bytes(struct.pack(">HHB", 0, 0, flags) + b"\0\0\0x")


@pytest.mark.parametrize("reserved", [b"\1\0\0", b"\0\0\1"])
def test_chunk_reserved(reserved: bytes) -> None:
    with pytest.raises(DecodeError, match="reserved"):
        Chunk.from_bytes(struct.pack(">HHB", 0, 0, 1) + reserved + b"x")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Sum(SIG1[:63], EPHM),
        lambda: Sum(SIG1, EPHM + b"\0"),
        lambda: Sum("x" * 64, EPHM),
        lambda: Update(SIG1, SIG2[:10], mask_object(1), seed_dict(1)),
        lambda: Update(SIG1, SIG2, mask_object(1).to_bytes(), seed_dict(1)),
        lambda: Update(SIG1, SIG2, mask_object(1), {}),
        lambda: Sum2(SIG1, None),
        lambda: Chunk(-1, 0, False, b"x"),
        lambda: Chunk(2**16, 0, False, b"x"),
        lambda: Chunk(0, 2**16, False, b"x"),
        lambda: Chunk(0, 0, 1, b"x"),
        lambda: Chunk(0, 0, False, b""),
        lambda: Chunk(True, 0, False, b"x"),
    ],
)
def test_constructor_validation(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


def test_bytes_like_fields_are_normalised() -> None:
    s = Sum(bytearray(SIG1), memoryview(EPHM))
    assert type(s.sum_signature) is bytes
    assert type(s.ephm_pk) is bytes
    assert s == Sum(SIG1, EPHM)
    c = Chunk(0, 0, False, bytearray(b"abc"))
    assert type(c.data) is bytes


def test_empty_seed_dict_is_structurally_valid() -> None:
    u = Update(SIG1, SIG2, mask_object(2), LocalSeedDict())
    assert Update.from_bytes(u.to_bytes()) == u
