"""Mask objects and their wire encoding."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaynet.errors import ConfigError, DecodeError, ModelError, RemoteProtocolError
from xaynet.mask import MaskConfig, MaskConfigPair, MaskObject, MaskUnit, MaskVect

from .support import ALL_CONFIGS

DEFAULT = MaskConfig.from_names("Prime", "F32", "B0", "M3")


@st.composite
def vects(draw: st.DrawFn, config: MaskConfig | None = None) -> MaskVect:
    if config is None:
        config = draw(st.sampled_from(ALL_CONFIGS))
    top = 256**config.bytes_per_element - 1
    element = st.one_of(
        st.integers(min_value=0, max_value=config.order - 1),
        st.sampled_from([0, config.order - 1, top]),
    )
    elements = draw(st.lists(element, max_size=12))
    return MaskVect.from_elements(config, elements)


@st.composite
def units(draw: st.DrawFn) -> MaskUnit:
    config = draw(st.sampled_from(ALL_CONFIGS))
    top = 256**config.bytes_per_element - 1
    value = draw(st.one_of(st.integers(min_value=0, max_value=top), st.just(top)))
    return MaskUnit(config, value)


objects = st.builds(MaskObject, vects(), units())


@settings(deadline=None, max_examples=200)
@given(objects, st.binary(max_size=5))
def test_object_round_trip(obj: MaskObject, prefix: bytes) -> None:
    raw = obj.to_bytes()
    assert len(raw) == obj.byte_length
    assert MaskObject.from_bytes(raw) == obj
    assert MaskObject.from_bytes(memoryview(raw)) == obj
    decoded, end = MaskObject.decode(prefix + raw + b"tail", len(prefix))
    assert decoded == obj
    assert end == len(prefix) + len(raw)
    assert obj.config == MaskConfigPair(obj.vect.config, obj.unit.config)
    assert len(obj) == len(obj.vect)


@settings(deadline=None, max_examples=100)
@given(vects())
def test_vect_elements_round_trip(vect: MaskVect) -> None:
    elements = vect.elements()
    width = vect.config.bytes_per_element
    assert vect.data == b"".join(v.to_bytes(width, "little") for v in elements)
    assert MaskVect.from_elements(vect.config, elements) == vect
    raw = vect.to_bytes()
    assert raw[:4] == vect.config.to_bytes()
    assert struct.unpack(">I", raw[4:8]) == (len(elements),)
    assert MaskVect.decode(raw) == (vect, len(raw))


@settings(deadline=None, max_examples=100)
@given(objects)
def test_truncated_objects_fail(obj: MaskObject) -> None:
    raw = obj.to_bytes()
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            MaskObject.from_bytes(raw[:cut])


@settings(deadline=None, max_examples=50)
@given(objects, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_fail(obj: MaskObject, tail: bytes) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        MaskObject.from_bytes(obj.to_bytes() + tail)


def test_wire_layout() -> None:
    obj = MaskObject(MaskVect.from_elements(DEFAULT, [1, 2**40 + 3]), MaskUnit(DEFAULT, 258))
    config = bytes([1, 0, 0, 3])
    assert obj.to_bytes() == (
        config
        + b"\x00\x00\x00\x02"
        + b"\x01\x00\x00\x00\x00\x00"
        + b"\x03\x00\x00\x00\x00\x01"
        + config
        + b"\x02\x01\x00\x00\x00\x00"
    )
    assert obj.byte_length == 8 + 12 + 4 + 6


@pytest.mark.parametrize(
    ("position", "code"),
    [(0, 3), (1, 4), (2, 1), (3, 0), (3, 255)],
)
@pytest.mark.parametrize("part", ["vect", "unit"])
def test_unknown_config_codes(position: int, code: int, part: str) -> None:
    raw = bytearray(
        MaskObject(MaskVect.from_elements(DEFAULT, [5]), MaskUnit(DEFAULT, 7)).to_bytes()
    )
    start = 0 if part == "vect" else 8 + 6
    raw[start + position] = code
    with pytest.raises(DecodeError):
        MaskObject.from_bytes(bytes(raw))


def test_vector_count_beyond_buffer() -> None:
    raw = bytearray(MaskVect.from_elements(DEFAULT, [1, 2]).to_bytes())
    raw[4:8] = struct.pack(">I", 2**32 - 1)
    with pytest.raises(DecodeError):
        MaskVect.decode(bytes(raw))


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=64))
def test_random_bytes_raise_only_decode_errors(raw: bytes) -> None:
    try:
        obj = MaskObject.from_bytes(raw)
    except DecodeError:
        return
    assert obj.to_bytes() == raw


def test_vect_validation() -> None:
    with pytest.raises(DecodeError):
        MaskVect(DEFAULT, b"\x00" * 7)  # not a whole number of 6-byte elements
    with pytest.raises(ConfigError):
        MaskVect("Prime/F32/B0/M3", b"")  # type: ignore[arg-type]
    assert MaskVect(DEFAULT, bytearray(6)).data == bytes(6)  # type: ignore[arg-type]
    assert isinstance(MaskVect(DEFAULT, bytearray(6)).data, bytes)  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        MaskVect.from_elements(DEFAULT, [2**48])


@pytest.mark.parametrize("value", [-1, 2**48, True, 1.0, "1", None])
def test_unit_validation(value: object) -> None:
    with pytest.raises(RemoteProtocolError):
        MaskUnit(DEFAULT, value)  # type: ignore[arg-type]


def test_object_validation() -> None:
    vect = MaskVect.from_elements(DEFAULT, [1])
    unit = MaskUnit(DEFAULT, 1)
    with pytest.raises(DecodeError):
        MaskObject(unit, vect)  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        MaskObject(vect, None)  # type: ignore[arg-type]
    obj = MaskObject(vect, unit)
    with pytest.raises(AttributeError):
        obj.vect = vect  # type: ignore[misc]
