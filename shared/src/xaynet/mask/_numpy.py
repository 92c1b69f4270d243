"""The numpy fast path: the same integers as the pure path, for configs with q < 2^63.

Elements live in uint64 lanes. Quantization and the final division must give exactly the
integers and correctly rounded floats of the exact pure path; both use float64 error-free
transformations (Dekker's two-product) and hand the rare elements whose result the transformed
values cannot decide to the exact pure functions.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from xaynet import crypto
from xaynet.errors import AggregationError, ModelError
from xaynet.mask import encoding, sampling
from xaynet.mask.config import DataType, MaskConfig

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_SPLITTER = float(2**27 + 1)
# Results closer than this to a rounding boundary are recomputed exactly.
_BAND = 2.0**-40
_TINY = 2.0**-60


def _split(a: F64) -> tuple[F64, F64]:
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def _two_product(a: F64, b: F64 | float) -> tuple[F64, F64]:
    """p + e == a * b exactly (no overflow/underflow assumed), p = fl(a * b)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(np.asarray(b, dtype=np.float64))
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


# -- conversion ------------------------------------------------------------------------------


def convert_model(model: Any, data_type: DataType) -> npt.NDArray[Any]:
    """Model values as float64 (F32: rounded to binary32 first) or int64 (I32/I64)."""
    if not isinstance(model, np.ndarray):
        # A Python sequence: convert it the pure way, so both paths accept, reject and round the
        # same values (np.asarray would turn [2**53 + 1, 0.5] or [True, 0.5] into float64).
        converted = encoding.convert_model(model, data_type)
        integral = data_type in (DataType.I32, DataType.I64)
        return np.asarray(converted, dtype=np.int64 if integral else np.float64)
    try:
        array = np.asarray(model)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"the model is not a numeric vector: {exc}") from None
    if array.ndim != 1:
        raise ModelError(f"the model must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind not in "fiub":
        raise ModelError(f"the model must be numeric, got dtype {array.dtype}")
    if array.dtype.kind == "b":
        raise ModelError("the model must be numeric, got booleans")
    if data_type in (DataType.F32, DataType.F64):
        values = array.astype(np.float64)
        if data_type is DataType.F32:
            with np.errstate(over="ignore"):
                f32 = values.astype(np.float32)
            values = f32.astype(np.float64)
        if not np.isfinite(values).all():
            raise ModelError("model values must be finite numbers within the data type's range")
        return values
    low, high = (-(2**31), 2**31 - 1) if data_type is DataType.I32 else (-(2**63), 2**63 - 1)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not (np.floor(array) == array).all():
            raise ModelError(f"model values must be integers for {data_type.name}")
        if array.size and (array.min() < low or array.max() > high):
            raise ModelError(f"model values are outside the range of {data_type.name}")
        return array.astype(np.int64)
    if array.dtype.kind == "u" and array.size and int(array.max()) > high:
        raise ModelError(f"model values are outside the range of {data_type.name}")
    ints = array.astype(np.int64)
    if array.size and (int(ints.min()) < low or int(ints.max()) > high):
        raise ModelError(f"model values are outside the range of {data_type.name}")
    return ints


# -- quantization ----------------------------------------------------------------------------


def quantize(values: npt.NDArray[Any], scalar: Fraction, config: MaskConfig) -> U64:
    """Exactly :func:`encoding.quantize` for numpy-compatible configs."""
    bound, exp = config.add_shift, config.exp_shift
    be = bound * exp
    n = values.shape[0]
    y = np.empty(n, dtype=np.int64)
    if scalar == 0:
        y.fill(be)
        return y.view(np.uint64)
    exact: npt.NDArray[np.bool_]
    if values.dtype == np.int64:
        # int64 -> float64 is exact below 2^53; larger magnitudes go the exact way.
        exact = np.abs(values) <= 2**53
        w = values.astype(np.float64)
    else:
        exact = np.ones(n, dtype=bool)
        w = values
    s = float(scalar)
    if Fraction(s) != scalar:
        # A scalar that is not a binary64 value: no error-free product, use the exact path.
        exact[:] = False
    # A huge scalar (a unit config with a large bound) overflows the splitting: the products
    # it affects are clamped (high/low) or recomputed, so the non-finite values are harmless.
    with np.errstate(over="ignore", invalid="ignore"):
        p, e1 = _two_product(w, s)
        bound_f = float(bound)
        high = (p > bound_f) | ((p == bound_f) & (e1 >= 0))
        low = (p < -bound_f) | ((p == -bound_f) & (e1 <= 0))
        tiny = np.abs(p) < _TINY
        a, e2 = _two_product(p, float(exp))
        e3 = e1 * float(exp)
        fa = np.floor(a)
        r = a - fa
        frac = r + (e2 + e3)
        step = np.floor(frac)
        no_error = (e1 == 0) & (e2 == 0)
        ambiguous = ~no_error & ((np.abs(frac) < _BAND) | (np.abs(frac - 1.0) < _BAND))
        step[no_error] = 0.0
        y[:] = fa.astype(np.int64) + step.astype(np.int64) + be
    # Tiny products: floor(x * E) is 0 or -1 by the sign of x alone.
    y[tiny] = np.where(w[tiny] < 0, be - 1, be)
    y[high] = 2 * be
    y[low] = 0
    redo = np.flatnonzero((ambiguous & ~tiny & ~high & ~low) | ~exact)
    for i in redo.tolist():
        y[i] = encoding.quantize_value(values[i].item(), scalar, config)
    return y.view(np.uint64)


# -- elements --------------------------------------------------------------------------------


def decode(data: bytes, width: int, out: U64 | None = None) -> U64:
    """Read ``width``-byte little-endian elements (``4 <= width <= 8``) into uint64 lanes."""
    n = len(data) // width
    if out is None:
        out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    lane_mask = np.uint64((1 << (8 * width)) - 1)
    # Overlapping unaligned 8-byte reads at stride `width`; the last element is read apart so
    # that no read passes the end of the buffer.
    body = np.ndarray(shape=(n - 1,), dtype="<u8", buffer=data, offset=0, strides=(width,))
    np.bitwise_and(body, lane_mask, out=out[: n - 1])
    out[n - 1] = int.from_bytes(data[(n - 1) * width :], "little")
    return out


def _packed_dtype(width: int) -> np.dtype[Any]:
    # A record of little-endian fields covering `width` bytes: 4, 2 and 1 byte parts.
    names, formats, offsets, offset = [], [], [], 0
    for size, code in ((4, "<u4"), (2, "<u2"), (1, "u1")):
        if width - offset >= size:
            names.append(f"b{offset}")
            formats.append(code)
            offsets.append(offset)
            offset += size
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": width})


def encode(values: U64, width: int) -> bytes:
    """Write uint64 lanes (each below ``256**width``) as ``width``-byte little-endian elements."""
    if width == 8:
        return values.astype("<u8", copy=False).tobytes()
    dtype = _packed_dtype(width)
    out = np.empty(values.shape[0], dtype=dtype)
    for name in dtype.names or ():
        shift = np.uint64(8 * dtype.fields[name][1])  # type: ignore[index]
        out[name] = values >> shift if shift else values
    return out.tobytes()


def draw_vector(stream: crypto.Keystream, config: MaskConfig, count: int) -> bytes:
    """:func:`sampling.draw_vector`, vectorised; returns the wire encoding."""
    width, order = config.bytes_per_element, config.order
    if order == 1 << config.bits:
        return sampling.draw_vector(stream, config, count)
    bits_mask = np.uint64((1 << config.bits) - 1)
    out = np.empty(count, dtype=np.uint64)
    filled = 0
    while filled < count:
        missing = count - filled
        values = decode(stream.read(sampling.batch_draws(missing, config) * width), width)
        values &= bits_mask
        # np.compress keeps the order and beat boolean indexing by a third here.
        values = np.compress(values < np.uint64(order), values)
        take = min(missing, values.shape[0])
        out[filled : filled + take] = values[:take]
        filled += take
    return encode(out, width)


def add_mod(acc: U64, values: U64, order: int) -> None:
    """acc = (acc + values) mod q in place, for acc, values < q < 2^63."""
    acc += values
    if order & (order - 1) == 0:
        acc &= np.uint64(order - 1)
    else:
        np.subtract(acc, np.uint64(order), out=acc, where=acc >= np.uint64(order))


def sub_mod(a: U64, b: U64, order: int) -> U64:
    """(a - b) mod q for a, b < q."""
    out = a - b
    np.add(out, np.uint64(order), out=out, where=a < b)
    return out


def max_below(values: U64, order: int) -> bool:
    return values.size == 0 or int(values.max()) < order


# -- decoding the mean -------------------------------------------------------------------------


def weighted_mean(
    sums: U64, scalar_sum: int, count: int, vect: MaskConfig, unit: MaskConfig
) -> F64:
    """Exactly :func:`encoding.weighted_mean` (correctly rounded) for numpy-compatible configs."""
    weight = scalar_sum - count * unit.add_shift * unit.exp_shift
    if weight <= 0:
        raise AggregationError(
            "zero_weight", "the scalars of all aggregated models sum to zero: no weighted mean"
        )
    offset = count * vect.add_shift * vect.exp_shift
    factor = Fraction(unit.exp_shift, vect.exp_shift * weight)
    try:
        c_hi = float(factor)
    except OverflowError:
        # Only a unit config much finer than the vector's gets here (e.g. F64/Bmax scalars with
        # a subnormal scalar sum): decide every element the exact way, as the pure path does.
        exact = encoding.weighted_mean(sums.tolist(), scalar_sum, count, vect, unit)
        return np.asarray(exact, dtype=np.float64)
    c_lo = float(factor - Fraction(c_hi))
    # A huge factor (a unit config much finer than the vector's) overflows the splitting: the
    # non-finite results are recomputed exactly below.
    with np.errstate(over="ignore", invalid="ignore"):
        # v = sums - offset is below q < 2^63 in magnitude: exact in int64.
        v = sums.astype(np.int64) - np.int64(offset)
        v_hi = v.astype(np.float64)
        v_lo = (v - v_hi.astype(np.int64)).astype(np.float64)
        p, pe = _two_product(v_hi, c_hi)
        corr = (pe + v_hi * c_lo) + v_lo * c_hi
        g = p + corr
        # Distance of the double-double value to g, against half an ulp of g: close to a rounding
        # boundary (also the narrower one below a power of two) means recompute exactly.
        d = np.abs((p - g) + corr)
        half_ulp = np.spacing(np.abs(g)) / 2
        scale = np.abs(g) * 2.0**-80 + 2.0**-1000
        ambiguous = (np.abs(d - half_ulp) < scale) | (np.abs(d - half_ulp / 2) < scale)
        ambiguous &= v != 0
    redo = np.flatnonzero(ambiguous | ~np.isfinite(g))
    if redo.size:
        # The exact way, element by element; a mean beyond the float range raises the pure
        # path's error.
        redone = encoding.weighted_mean(sums[redo].tolist(), scalar_sum, count, vect, unit)
        g[redo] = redone
    g[v == 0] = 0.0
    return g


def is_finite_scalar(value: float) -> bool:
    return math.isfinite(value)
