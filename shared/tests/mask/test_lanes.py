"""Whole-buffer element conversions: round trips against int.to_bytes / int.from_bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaynet.errors import ModelError
from xaynet.mask import _lanes

widths = st.integers(min_value=1, max_value=16)


@st.composite
def elements_of_width(draw: st.DrawFn) -> tuple[int, list[int]]:
    width = draw(widths)
    top = (1 << (8 * width)) - 1
    value = st.one_of(st.integers(min_value=0, max_value=top), st.sampled_from([0, 1, top]))
    return width, draw(st.lists(value, max_size=40))


def _reference_pack(elements: list[int], width: int) -> bytes:
    return b"".join(v.to_bytes(width, "little") for v in elements)


@settings(deadline=None, max_examples=300)
@given(elements_of_width())
def test_pack_unpack_round_trip(case: tuple[int, list[int]]) -> None:
    width, elements = case
    packed = _lanes.pack(elements, width)
    assert packed == _reference_pack(elements, width)
    assert _lanes.unpack(packed, width) == elements
    assert _lanes.unpack(bytearray(packed), width) == elements
    assert _lanes.unpack(memoryview(packed), width) == elements


@pytest.mark.parametrize("width", range(1, 17))
def test_pack_rejects_out_of_range(width: int) -> None:
    with pytest.raises(ModelError):
        _lanes.pack([0, 1 << (8 * width)], width)
    with pytest.raises(ModelError):
        _lanes.pack([-1, 0], width)
    assert _lanes.pack([], width) == b""
    assert _lanes.unpack(b"", width) == []


@settings(deadline=None, max_examples=200)
@given(
    width=st.integers(min_value=1, max_value=8),
    extra=st.integers(min_value=0, max_value=8),
    data=st.data(),
)
def test_widen_narrow_inverse(width: int, extra: int, data: st.DataObject) -> None:
    lane = width + extra
    count = data.draw(st.integers(min_value=0, max_value=30))
    raw = data.draw(st.binary(min_size=count * width, max_size=count * width))
    lanes = _lanes.widen(raw, width, lane)
    assert len(lanes) == count * lane
    for i in range(count):
        # Each lane: the element's bytes, then zero padding.
        assert lanes[i * lane : i * lane + width] == raw[i * width : (i + 1) * width]
        assert lanes[i * lane + width : (i + 1) * lane] == bytes(extra)
    assert _lanes.narrow(lanes, width, lane) == raw


def test_widen_default_lane_is_eight() -> None:
    assert _lanes.widen(b"\x01\x02\x03\x04\x05\x06", 3) == (
        b"\x01\x02\x03\x00\x00\x00\x00\x00\x04\x05\x06\x00\x00\x00\x00\x00"
    )
    assert _lanes.narrow(bytes(range(16)), 2) == bytes([0, 1, 8, 9])


@settings(deadline=None, max_examples=100)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=30))
def test_uint64_lists(values: list[int]) -> None:
    raw = _lanes.from_uint64_list(values)
    assert raw == b"".join(v.to_bytes(8, "little") for v in values)
    assert _lanes.to_uint64_list(raw) == values


@pytest.mark.parametrize("bad", [[2**64], [-1], [1.5]])
def test_from_uint64_list_rejects(bad: list[object]) -> None:
    with pytest.raises(ModelError):
        _lanes.from_uint64_list(bad)  # type: ignore[arg-type]
