"""Uniform group elements from a seed: the mask of a masked model.

The keystream is libsodium's ``randombytes_buf_deterministic`` for the 32-byte seed (ChaCha20-IETF,
nonce "LibsodiumDRG", block counter from 0), read front to back. For an order q let
k = bitlen(q - 1) and L = ceil(k / 8) (the element size on the wire). One draw takes the next L
bytes, reads them little-endian, clears every bit from bit k up, and is accepted if the value is
below q; otherwise the next L bytes are tried. The unit element is drawn first (unit config),
then the vector elements in order (vector config), from the same stream.

For a power of two q = 2^k nothing is ever rejected. For a prime the acceptance rate is
q / 2^k, above one half.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from xaynet import crypto
from xaynet.mask import _lanes
from xaynet.mask.config import MaskConfig

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["draw_unit", "draw_vector", "acceptance_rate", "batch_draws"]


def acceptance_rate(config: MaskConfig) -> float:
    """The probability that one draw is accepted: q / 2^k."""
    return config.order / (1 << config.bits)


def batch_draws(missing: int, config: MaskConfig) -> int:
    # Enough draws to finish in one batch almost always; a short batch just loops once more.
    expected = missing / acceptance_rate(config)
    return int(expected * 1.02) + 64


def draw_unit(stream: crypto.Keystream, config: MaskConfig) -> int:
    """Draw one element (the unit element comes first)."""
    width, order = config.bytes_per_element, config.order
    bits_mask = (1 << config.bits) - 1
    while True:
        value = int.from_bytes(stream.read(width), "little") & bits_mask
        if value < order:
            return value


@functools.cache  # a summer derives hundreds of masks per round with one config
def _top_byte_table(config: MaskConfig) -> bytes:
    # Clears the bits above k in the most significant byte of an element.
    top_bits = config.bits - 8 * (config.bytes_per_element - 1)
    keep = (1 << top_bits) - 1
    return bytes(b & keep for b in range(256))


def draw_vector(stream: crypto.Keystream, config: MaskConfig, count: int) -> bytes:
    """Draw ``count`` vector elements; return them in their wire encoding."""
    width, order = config.bytes_per_element, config.order
    if order == 1 << config.bits:
        # A power of two never rejects: the elements are the stream's bytes with the bits from
        # k up cleared, i.e. only the top byte of every element changes.
        raw = bytearray(stream.read(count * width))
        raw[width - 1 :: width] = raw[width - 1 :: width].translate(_top_byte_table(config))
        return bytes(raw)
    out: list[int] = []
    decode = _decoder(config)
    while len(out) < count:
        missing = count - len(out)
        values = decode(stream.read(batch_draws(missing, config) * width))
        out.extend([v for v in values if v < order][:missing])
    return _lanes.pack(out, width)


def _decoder(config: MaskConfig) -> Callable[[bytes], list[int]]:
    width = config.bytes_per_element
    if width <= 8:
        table = _top_byte_table(config)

        def decode_lanes(raw: bytes) -> list[int]:
            lanes = bytearray(len(raw) // width * 8)
            for j in range(width - 1):
                lanes[j::8] = raw[j::width]
            lanes[width - 1 :: 8] = raw[width - 1 :: width].translate(table)
            return _lanes.to_uint64_list(lanes)

        return decode_lanes

    bits_mask = (1 << config.bits) - 1

    def decode_big(raw: bytes) -> list[int]:
        view = memoryview(raw)
        return [
            int.from_bytes(view[i : i + width], "little") & bits_mask
            for i in range(0, len(view), width)
        ]

    return decode_big
