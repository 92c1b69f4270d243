"""Whole-buffer conversions between packed little-endian elements and Python integers.

The pure path must be fast under Pyodide too, so nothing here slices element by element when it
can be avoided: elements of up to 8 bytes are spread into 8-byte lanes with extended-slice
assignments (one C-level copy per byte position) and read with ``array('Q')``; a buffer of lanes
is also one big integer, so whole vectors add with a single big-integer addition.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

from xaynet.errors import ModelError

__all__ = ["pack", "unpack", "widen", "narrow", "to_uint64_list", "from_uint64_list"]

_BIG_ENDIAN_HOST = sys.byteorder == "big"


def widen(data: bytes | bytearray | memoryview, width: int, lane: int = 8) -> bytearray:
    """Copy ``width``-byte elements into ``lane``-byte lanes (zero-padded), ``width <= lane``."""
    n = len(data) // width
    out = bytearray(n * lane)
    for j in range(width):
        out[j::lane] = data[j::width]
    return out


def narrow(lanes: bytes | bytearray | memoryview, width: int, lane: int = 8) -> bytes:
    """Inverse of :func:`widen`: keep the low ``width`` bytes of every ``lane``-byte lane."""
    n = len(lanes) // lane
    out = bytearray(n * width)
    for j in range(width):
        out[j::width] = lanes[j::lane]
    return bytes(out)


def to_uint64_list(lanes: bytes | bytearray) -> list[int]:
    """Read 8-byte little-endian lanes as integers."""
    values = array("Q")
    values.frombytes(lanes)
    if _BIG_ENDIAN_HOST:  # pragma: no cover - every supported host is little-endian
        values.byteswap()
    return values.tolist()


def from_uint64_list(values: Sequence[int]) -> bytes:
    """Write integers in ``[0, 2^64)`` as 8-byte little-endian lanes."""
    try:
        packed = array("Q", values)
    except (OverflowError, TypeError) as exc:
        raise ModelError(f"element outside [0, 2^64): {exc}") from None
    if _BIG_ENDIAN_HOST:  # pragma: no cover
        packed.byteswap()
    return packed.tobytes()


def pack(elements: Sequence[int], width: int) -> bytes:
    """Encode non-negative integers below ``256**width`` as ``width``-byte little-endian."""
    if not elements:
        return b""
    if width <= 8:
        if min(elements) < 0 or max(elements) >= 1 << (8 * width):
            raise ModelError(f"element does not fit in {width} bytes")
        return narrow(from_uint64_list(elements), width)
    limit = 1 << (8 * width)
    out = bytearray()
    for value in elements:
        if not 0 <= value < limit:
            raise ModelError(f"element does not fit in {width} bytes")
        out += value.to_bytes(width, "little")
    return bytes(out)


def unpack(data: bytes | bytearray | memoryview, width: int) -> list[int]:
    """Decode ``width``-byte little-endian elements."""
    if width <= 8:
        return to_uint64_list(widen(data, width))
    view = memoryview(data)
    return [int.from_bytes(view[i : i + width], "little") for i in range(0, len(view), width)]
