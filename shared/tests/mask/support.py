"""Independent reference definitions for the masking tests (exact, slow, obviously correct).

Nothing here calls the code under test except ``crypto.prg`` (the byte stream, tested by the
crypto suite): constants are restated from the specification and every formula is written with
``fractions.Fraction`` so the tests compare the optimised code with the definition.
"""

from __future__ import annotations

import itertools
import math
import struct
import sys
from collections.abc import Sequence
from fractions import Fraction

from xaynet import crypto
from xaynet.mask import BoundType, DataType, GroupType, MaskConfig, MaskConfigPair, ModelType

ALL_CONFIGS: list[MaskConfig] = [
    MaskConfig(g, d, b, m)
    for g, d, b, m in itertools.product(GroupType, DataType, BoundType, ModelType)
]
#: Configs the numpy path serves (q < 2^63): only F32/I32/I64 with small bounds and model counts.
NUMPY_CONFIGS: list[MaskConfig] = [c for c in ALL_CONFIGS if c.numpy_compatible]

F32_MAX = Fraction(struct.unpack("<f", b"\xff\xff\x7f\x7f")[0])
F64_MAX = Fraction(sys.float_info.max)

# Restated from the specification, section 2.2.
BOUNDS = {BoundType.B0: 1, BoundType.B2: 100, BoundType.B4: 10_000, BoundType.B6: 1_000_000}
BMAX = {DataType.F32: F32_MAX, DataType.F64: F64_MAX, DataType.I32: 2**31, DataType.I64: 2**63}
EXPONENTS = {
    (DataType.F32, False): 10,
    (DataType.F32, True): 45,
    (DataType.F64, False): 20,
    (DataType.F64, True): 324,
    (DataType.I32, False): 10,
    (DataType.I32, True): 10,
    (DataType.I64, False): 10,
    (DataType.I64, True): 10,
}
MAX_MODELS = {ModelType.M3: 10**3, ModelType.M6: 10**6, ModelType.M9: 10**9, ModelType.M12: 10**12}


def bound(config: MaskConfig) -> int:
    """B of the spec (an integer for every row: the float maxima are integers)."""
    if config.bound_type is BoundType.BMAX:
        value = BMAX[config.data_type]
        assert Fraction(value).denominator == 1
        return int(value)
    return BOUNDS[config.bound_type]


def exp_shift(config: MaskConfig) -> int:
    return 10 ** EXPONENTS[config.data_type, config.bound_type is BoundType.BMAX]


def integer_order(config: MaskConfig) -> int:
    return MAX_MODELS[config.model_type] * 2 * bound(config) * exp_shift(config) + 1


def pair(group: str, data: str, bound_name: str, model: str) -> MaskConfigPair:
    return MaskConfigPair.uniform(MaskConfig.from_names(group, data, bound_name, model))


# -- values --------------------------------------------------------------------------------------


def round_to_f32(x: float) -> float | None:
    """The binary32 value nearest to ``x`` (ties to even), or None if it overflows.

    Written from the IEEE 754 definition with exact rationals, not with a float32 cast.
    """
    if x == 0 or not math.isfinite(x):
        return x if x == 0 else None
    magnitude = Fraction(abs(x))
    _, exponent = math.frexp(abs(x))  # |x| = m * 2^exponent, 0.5 <= m < 1
    quantum = Fraction(2) ** (max(exponent, -125) - 24)  # 24 significant bits, subnormals below
    steps = magnitude / quantum
    n = math.floor(steps)
    rest = steps - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2 == 1):
        n += 1
    rounded = n * quantum
    if rounded > F32_MAX:
        return None
    return math.copysign(float(rounded), x)


def clamped_scalar(scalar: Fraction, unit: MaskConfig) -> Fraction:
    return min(scalar, Fraction(bound(unit)))


def expected_y(value: float | int, scalar: Fraction, config: MaskConfig) -> int:
    """floor((clamp(s' * w, -B, B) + B) * E) with exact rationals."""
    b = Fraction(bound(config))
    x = min(max(scalar * Fraction(value), -b), b)
    return math.floor((x + b) * exp_shift(config))


def expected_scalar_y(scalar: Fraction, unit: MaskConfig) -> int:
    return math.floor((scalar + bound(unit)) * exp_shift(unit))


def exact_mean(
    models: Sequence[Sequence[float | int]],
    scalars: Sequence[Fraction],
    pair_: MaskConfigPair,
) -> list[Fraction]:
    """The exact value unmasking must produce: sum_j t(s'_j w_ij) / sum_j t(s'_j).

    ``models`` are already converted to the data type, ``scalars`` already clamped; t() truncates
    to the fixed-point grid 1/E.
    """
    vect, unit = pair_.vect, pair_.unit
    e_v, e_u = exp_shift(vect), exp_shift(unit)
    b_v, b_u = bound(vect), bound(unit)
    weight = sum(Fraction(expected_scalar_y(s, unit) - b_u * e_u, e_u) for s in scalars)
    return [
        sum(
            (
                Fraction(expected_y(m[i], s, vect) - b_v * e_v, e_v)
                for m, s in zip(models, scalars, strict=True)
            ),
            Fraction(0),
        )
        / weight
        for i in range(len(models[0]))
    ]


# -- the mask of a seed, by the documented rule ------------------------------------------------


class _ExhaustedError(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _ExhaustedError
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def _draw(reader: _Reader, order: int) -> int:
    k = (order - 1).bit_length()
    width = (k + 7) // 8
    while True:
        value = int.from_bytes(reader.take(width), "little") % (1 << k)
        if value < order:
            return value


def naive_mask(seed: bytes, pair_: MaskConfigPair, length: int) -> tuple[int, list[int], int]:
    """(unit element, vector elements, bytes consumed) by the rule of ``xaynet.mask.sampling``:
    k = bitlen(q - 1), L = ceil(k / 8); draw L bytes little-endian, keep the low k bits, accept
    below q; the unit element first, then the vector elements, all from ``crypto.prg(seed, .)``.
    """
    size = 4096
    while True:
        reader = _Reader(crypto.prg(seed, size))
        try:
            unit = _draw(reader, pair_.unit.order)
            vector = [_draw(reader, pair_.vect.order) for _ in range(length)]
        except _ExhaustedError:
            size *= 4
            continue
        return unit, vector, reader.pos
