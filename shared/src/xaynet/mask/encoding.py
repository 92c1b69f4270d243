"""Fixed-point encoding of model values and scalars into group elements (pure Python, exact).

For a config with add-shift B and exp-shift E, and a scalar s' = min(s, B_unit):

    x_i = clamp(s' * w_i, -B, +B)           (exact rational)
    y_i = floor((x_i + B) * E)              an integer in [0, 2BE]
    y_0 = floor((s' + B_unit) * E_unit)     the scalar, in the unit config

Model values are first converted to the config's data type: F32 rounds to the nearest binary32
value, F64 takes the binary64 value, I32/I64 require integers in range. Every computation is exact
integer arithmetic, so every runtime gets the same integers. The numpy path (``_numpy``) computes
the same integers with float64 error-free transformations and falls back to these functions for
the rare elements it cannot decide.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from fractions import Fraction
from numbers import Rational
from typing import Any

from xaynet.errors import AggregationError, ModelError
from xaynet.mask.config import DataType, MaskConfig

__all__ = [
    "Scalar",
    "to_scalar",
    "clamp_scalar",
    "convert_model",
    "quantize",
    "quantize_value",
    "encode_scalar",
    "weighted_mean",
]

#: Accepted scalar inputs: non-negative finite numbers.
Scalar = int | float | Fraction

_INT_RANGES = {DataType.I32: (-(2**31), 2**31 - 1), DataType.I64: (-(2**63), 2**63 - 1)}
_FLOAT_REJECTS = frozenset({bool, str, bytes, bytearray})


def to_scalar(scalar: object) -> Fraction:
    """The exact value of a scalar (aggregation weight); it must be finite and >= 0."""
    if isinstance(scalar, bool) or not isinstance(scalar, int | float | Rational):
        raise ModelError(f"the scalar must be a number, got {type(scalar).__name__}")
    if isinstance(scalar, float) and not math.isfinite(scalar):
        raise ModelError(f"the scalar must be finite, got {scalar!r}")
    value = Fraction(scalar)
    if value < 0:
        raise ModelError(f"the scalar must be >= 0, got {scalar!r}")
    return value


def clamp_scalar(scalar: Fraction, unit: MaskConfig) -> Fraction:
    """s' = min(s, B_unit): the scalar as it enters the aggregation."""
    bound = unit.add_shift
    return scalar if scalar <= bound else Fraction(bound)


def convert_model(model: Iterable[Any], data_type: DataType) -> list[float] | list[int]:
    """Convert model values to the exact values of ``data_type``; raise ModelError if impossible."""
    try:
        values = list(model)
    except TypeError:
        raise ModelError(
            f"the model must be a sequence of numbers, got {type(model).__name__}"
        ) from None
    if data_type in (DataType.F32, DataType.F64) and not _FLOAT_REJECTS.isdisjoint(
        map(type, values)
    ):
        # float() and struct take True and "1.5"; the numpy path rejects them: so does this one.
        raise ModelError("model values must be numbers, not bools or strings")
    if data_type is DataType.F32:
        try:
            packed = struct.pack(f"<{len(values)}f", *values)
        except (struct.error, OverflowError, TypeError) as exc:
            raise ModelError(f"model values must be finite numbers within float32: {exc}") from None
        floats = list(struct.unpack(f"<{len(values)}f", packed))
        _check_finite(floats)
        return floats
    if data_type is DataType.F64:
        try:
            floats = [float(v) for v in values]
        except (TypeError, ValueError, OverflowError) as exc:
            raise ModelError(f"model values must be numbers: {exc}") from None
        _check_finite(floats)
        return floats
    low, high = _INT_RANGES[data_type]
    ints = [_to_int(v, data_type) for v in values]
    for v in ints:
        if not low <= v <= high:
            raise ModelError(f"model value {v} is outside the range of {data_type.name}")
    return ints


def _to_int(value: object, data_type: DataType) -> int:
    if isinstance(value, bool):
        raise ModelError("model values must be integers, got a bool")
    if isinstance(value, float):
        if not value.is_integer():
            raise ModelError(f"model values must be integers for {data_type.name}, got {value!r}")
        return int(value)
    if isinstance(value, int):
        return value
    index = getattr(value, "__index__", None)
    if index is None:
        raise ModelError(
            f"model values must be integers for {data_type.name}, got {type(value).__name__}"
        )
    return int(index())


def _check_finite(values: Sequence[float]) -> None:
    if not all(map(math.isfinite, values)):
        raise ModelError("model values must be finite (no NaN or infinity)")


def quantize_value(value: float | int, scalar: Fraction, config: MaskConfig) -> int:
    """y = floor((clamp(s' * w, -B, B) + B) * E) for one value already in the config's type."""
    bound, exp = config.add_shift, config.exp_shift
    wn, wd = value.as_integer_ratio()
    num = scalar.numerator * wn
    den = scalar.denominator * wd
    if num >= bound * den:
        return 2 * bound * exp
    if num <= -bound * den:
        return 0
    return num * exp // den + bound * exp


def quantize(
    values: Sequence[float] | Sequence[int], scalar: Fraction, config: MaskConfig
) -> list[int]:
    """Quantize converted model values (see :func:`convert_model`) with the clamped scalar."""
    bound, exp = config.add_shift, config.exp_shift
    be, top = bound * exp, 2 * bound * exp
    sn, sd = scalar.numerator, scalar.denominator
    out = []
    for value in values:
        wn, wd = value.as_integer_ratio()
        num = sn * wn
        den = sd * wd
        if num >= bound * den:
            out.append(top)
        elif num <= -bound * den:
            out.append(0)
        else:
            out.append(num * exp // den + be)
    return out


def encode_scalar(scalar: Fraction, unit: MaskConfig) -> int:
    """y_0 = floor((s' + B_unit) * E_unit) for a clamped scalar s'."""
    exp = unit.exp_shift
    return scalar.numerator * exp // scalar.denominator + unit.add_shift * exp


def weighted_mean(
    sums: Sequence[int], scalar_sum: int, count: int, vect: MaskConfig, unit: MaskConfig
) -> list[float]:
    """Decode unmasked sums into the scalar-weighted mean, each value correctly rounded.

    ``sums[i] = sum_j y_ij`` and ``scalar_sum = sum_j y_0j`` over ``count`` objects. Then
    ``global_i = (sums[i] - N*B*E) / E  /  ((scalar_sum - N*B1*E1) / E1)``.
    """
    weight = scalar_sum - count * unit.add_shift * unit.exp_shift
    if weight <= 0:
        raise AggregationError(
            "zero_weight", "the scalars of all aggregated models sum to zero: no weighted mean"
        )
    offset = count * vect.add_shift * vect.exp_shift
    num_factor = unit.exp_shift
    den = vect.exp_shift * weight
    # int / int is correctly rounded in Python, whatever the size of the operands.
    try:
        return [(s - offset) * num_factor / den for s in sums]
    except OverflowError:
        raise AggregationError(
            "not_representable", "the weighted mean exceeds the range of a binary64 float"
        ) from None
