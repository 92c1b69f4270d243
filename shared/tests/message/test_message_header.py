from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from message_strategies import COORDINATOR_PK, PK

from xaynet.errors import DecodeError, LocalProtocolError
from xaynet.message import HEADER_LENGTH, Header, Tag, parse_header

SIG = bytes(range(64, 128))


def raw_message(
    *,
    payload: bytes = b"p" * 10,
    tag: int = 1,
    flags: int = 0,
    reserved: bytes = b"\0\0",
    length: int | None = None,
) -> bytes:
    total = HEADER_LENGTH + len(payload) if length is None else length
    return SIG + PK + COORDINATOR_PK + struct.pack(">IBB", total, tag, flags) + reserved + payload


def test_layout_offsets() -> None:
    header = parse_header(raw_message(tag=2, flags=1))
    assert header == Header(SIG, PK, COORDINATOR_PK, 146, Tag.UPDATE, 1)
    assert header.is_multipart
    assert header.to_bytes() == raw_message(tag=2, flags=1)[:HEADER_LENGTH]


def test_tag_codes() -> None:
    assert [int(t) for t in (Tag.SUM, Tag.UPDATE, Tag.SUM2)] == [1, 2, 3]


def test_header_only_message_is_accepted() -> None:
    header = parse_header(raw_message(payload=b""))
    assert header.length == HEADER_LENGTH
    assert not header.is_multipart


@pytest.mark.parametrize("size", [0, 1, 135])
def test_too_short(size: int) -> None:
    with pytest.raises(DecodeError, match="at least 136"):
        parse_header(raw_message(payload=b"")[:size])


@pytest.mark.parametrize("length", [0, 64, 135, 136, 145, 147, 2**32 - 1])
def test_length_field_must_equal_buffer(length: int) -> None:
    with pytest.raises(DecodeError, match="announces"):
        parse_header(raw_message(length=length))


def test_trailing_bytes_after_length_are_rejected() -> None:
    data = raw_message()
    with pytest.raises(DecodeError):
        parse_header(data + b"\0")


@pytest.mark.parametrize("tag", [0, 4, 255])
def test_unknown_tag(tag: int) -> None:
    with pytest.raises(DecodeError, match="tag"):
        parse_header(raw_message(tag=tag))


@given(st.integers(2, 255))
def test_unknown_flag_bits(flags: int) -> None:
    with pytest.raises(DecodeError, match="flags"):
        parse_header(raw_message(flags=flags))


@pytest.mark.parametrize("reserved", [b"\x00\x01", b"\x80\x00", b"\xff\xff"])
def test_reserved_bytes_must_be_zero(reserved: bytes) -> None:
    with pytest.raises(DecodeError, match="reserved"):
        parse_header(raw_message(reserved=reserved))


def test_accepts_bytearray_and_memoryview() -> None:
    data = raw_message()
    assert parse_header(bytearray(data)) == parse_header(memoryview(data)) == parse_header(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"signature": b"x" * 63},
        {"participant_pk": b"x" * 33},
        {"coordinator_pk": "x" * 32},
        {"length": 2**32},
        {"length": -1},
        {"tag": 4},
        {"tag": True},
        {"flags": 2},
        {"flags": 256},
    ],
)
def test_header_validation(changes: dict[str, object]) -> None:
    values: dict[str, object] = {
        "signature": SIG,
        "participant_pk": PK,
        "coordinator_pk": COORDINATOR_PK,
        "length": 200,
        "tag": Tag.SUM,
        "flags": 0,
    }
    values.update(changes)
    with pytest.raises(LocalProtocolError):
        Header(**values)  # type: ignore[arg-type]


def test_header_normalises_int_tag_and_bytes_like() -> None:
    header = Header(bytearray(SIG), memoryview(PK), COORDINATOR_PK, 200, 3, 0)  # type: ignore[arg-type]
    assert header.tag is Tag.SUM2
    assert type(header.signature) is bytes
    assert type(header.participant_pk) is bytes
