"""Fixed-point encoding against the exact definitions of the specification (section 2.4)."""

from __future__ import annotations

import math
import struct
import sys
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xaynet.errors import AggregationError, ModelError
from xaynet.mask import DataType, MaskConfig, encoding

from .support import (
    ALL_CONFIGS,
    F32_MAX,
    bound,
    clamped_scalar,
    exp_shift,
    expected_scalar_y,
    expected_y,
    round_to_f32,
)

FLOAT_CONFIGS = [c for c in ALL_CONFIGS if c.data_type in (DataType.F32, DataType.F64)]
INT_CONFIGS = [c for c in ALL_CONFIGS if c.data_type in (DataType.I32, DataType.I64)]
INT_RANGE = {DataType.I32: (-(2**31), 2**31 - 1), DataType.I64: (-(2**63), 2**63 - 1)}
F32_TINY = struct.unpack("<f", b"\x01\x00\x00\x00")[0]  # smallest binary32 subnormal


def _edge_floats(limit: float) -> list[float]:
    out = [0.0, -0.0, 5e-324, -5e-324, F32_TINY, 1e-300, 1.0, -1.0, 0.1, 1 / 3]
    for v in (limit, -limit):
        out += [v, math.nextafter(v, math.inf), math.nextafter(v, -math.inf)]
    out += [1e38, -1e38, 3.4e38, float(F32_MAX), 1.7e308, -1.7e308]
    return [v for v in out if math.isfinite(v)]


scalars = st.one_of(
    st.just(0),
    st.just(1),
    st.integers(min_value=0, max_value=10**7),
    st.fractions(min_value=0, max_value=10**6, max_denominator=10**12),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False, allow_subnormal=True),
    st.sampled_from([0.1, 137.0, 1e-300, 5e-324, 1 / 3, 1e30, 2.0**-1074]),
)


@st.composite
def float_cases(draw: st.DrawFn) -> tuple[MaskConfig, list[float], Fraction]:
    config = draw(st.sampled_from(FLOAT_CONFIGS))
    limit = float(min(bound(config), 1.7e308))
    wide = min(2 * limit, sys.float_info.max)
    value = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True),
        st.floats(min_value=-wide, max_value=wide, allow_nan=False, allow_infinity=False),
        st.sampled_from(_edge_floats(limit)),
    )
    values = draw(st.lists(value, min_size=1, max_size=8))
    return config, values, Fraction(draw(scalars))


@settings(deadline=None, max_examples=300)
@given(float_cases())
@example((MaskConfig.from_names("Prime", "F32", "B0", "M3"), [1.0, -1.0, 0.5, -0.0], Fraction(1)))
@example((MaskConfig.from_names("Prime", "F32", "B0", "M3"), [0.3, -0.7], Fraction(137)))
def test_quantize_floats_matches_exact_formula(
    case: tuple[MaskConfig, list[float], Fraction],
) -> None:
    config, values, scalar = case
    s = clamped_scalar(scalar, config)
    assert encoding.clamp_scalar(scalar, config) == s
    if config.data_type is DataType.F32:
        rounded = [round_to_f32(v) for v in values]
        if any(r is None for r in rounded):
            with pytest.raises(ModelError):
                encoding.convert_model(values, config.data_type)
            return
        expected_values = [r for r in rounded if r is not None]
    else:
        expected_values = values
    converted = encoding.convert_model(values, config.data_type)
    assert converted == expected_values
    # -0.0 == 0.0: also compare the signs, so the conversion cannot lose them.
    assert [math.copysign(1, v) for v in converted] == [
        math.copysign(1, v) for v in expected_values
    ]
    expected = [expected_y(v, s, config) for v in converted]
    assert encoding.quantize(converted, s, config) == expected
    assert [encoding.quantize_value(v, s, config) for v in converted] == expected
    assert all(0 <= y <= config.max_element for y in expected)


@st.composite
def int_cases(draw: st.DrawFn) -> tuple[MaskConfig, list[int], Fraction]:
    config = draw(st.sampled_from(INT_CONFIGS))
    low, high = INT_RANGE[config.data_type]
    b = bound(config)
    edges = [0, 1, -1, low, high, b, -b, b + 1, -b - 1, b - 1, 1 - b]
    value = st.one_of(
        st.integers(min_value=low, max_value=high),
        st.sampled_from([e for e in edges if low <= e <= high]),
    )
    values = draw(st.lists(value, min_size=1, max_size=8))
    return config, values, Fraction(draw(scalars))


@settings(deadline=None, max_examples=200)
@given(int_cases())
def test_quantize_ints_matches_exact_formula(case: tuple[MaskConfig, list[int], Fraction]) -> None:
    config, values, scalar = case
    s = clamped_scalar(scalar, config)
    converted = encoding.convert_model(values, config.data_type)
    assert converted == values
    expected = [expected_y(v, s, config) for v in values]
    assert encoding.quantize(converted, s, config) == expected
    assert [encoding.quantize_value(v, s, config) for v in converted] == expected


@pytest.mark.parametrize("config", ALL_CONFIGS[:: len(ALL_CONFIGS) // 40], ids=str)
def test_quantize_bounds_and_clamping(config: MaskConfig) -> None:
    b, e = bound(config), exp_shift(config)
    one = Fraction(1)
    limit = b if config.data_type in (DataType.I32, DataType.I64) else float(min(b, F32_MAX))
    if config.data_type is DataType.I32:
        limit = min(b, 2**31 - 1)
    if config.data_type is DataType.I64:
        limit = min(b, 2**63 - 1)
    values = encoding.convert_model([limit, -limit, 0], config.data_type)
    top, bottom, middle = encoding.quantize(values, one, config)
    assert middle == b * e
    assert top == math.floor((min(Fraction(limit), b) + b) * e)
    assert bottom == math.floor((max(-Fraction(limit), -b) + b) * e)
    # A value scaled past the bound is clamped to the end of the range.
    assert encoding.quantize(values, Fraction(b) * 4, config)[:2] == [2 * b * e, 0]


def test_quantize_worked_example() -> None:
    # Spec section 2.8: w = 0.5 -> 1.5e10, w = -0.25 -> 0.75e10, scalar 1 -> 2e10.
    config = MaskConfig.from_names("Prime", "F32", "B0", "M3")
    assert encoding.quantize([0.5, -0.25], Fraction(1), config) == [15 * 10**9, 75 * 10**8]
    assert encoding.encode_scalar(Fraction(1), config) == 2 * 10**10


def test_quantize_floors_towards_minus_infinity() -> None:
    config = MaskConfig.from_names("Prime", "F64", "B0", "M3")  # E = 1e20
    tiny = 2.0**-80  # 8.27e-25: below the resolution 1e-20
    y_pos, y_neg, y_zero = encoding.quantize([tiny, -tiny, -0.0], Fraction(1), config)
    be = 10**20
    assert (y_pos, y_neg, y_zero) == (be, be - 1, be)


@settings(deadline=None, max_examples=200)
@given(st.sampled_from(ALL_CONFIGS), scalars)
def test_encode_scalar(unit: MaskConfig, raw: object) -> None:
    scalar = encoding.to_scalar(raw)
    assert scalar == Fraction(raw)  # type: ignore[arg-type]
    s = encoding.clamp_scalar(scalar, unit)
    assert s == min(scalar, bound(unit))
    y = encoding.encode_scalar(s, unit)
    assert y == expected_scalar_y(s, unit)
    assert bound(unit) * exp_shift(unit) <= y <= 2 * bound(unit) * exp_shift(unit)


@pytest.mark.parametrize("scalar", [0, 0.0, 1, 2.5, Fraction(1, 3), 10**40, 5e-324])
def test_to_scalar_accepts(scalar: object) -> None:
    assert encoding.to_scalar(scalar) == Fraction(scalar)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "scalar",
    [-1, -0.5, -5e-324, Fraction(-1, 3), math.nan, math.inf, -math.inf, True, False, "1", None, 1j],
)
def test_to_scalar_rejects(scalar: object) -> None:
    with pytest.raises(ModelError):
        encoding.to_scalar(scalar)


def test_scalar_clamped_to_unit_bound() -> None:
    unit = MaskConfig.from_names("Prime", "F32", "B2", "M3")
    assert encoding.clamp_scalar(Fraction(1000), unit) == 100
    assert encoding.clamp_scalar(Fraction(100), unit) == 100
    assert encoding.clamp_scalar(Fraction(99), unit) == 99


# -- conversion to the data type -----------------------------------------------------------------


def test_f32_rounds_to_nearest() -> None:
    # 1 + 2^-24 is a tie between 1 and 1 + 2^-23: to even, i.e. 1; just above it rounds up.
    assert encoding.convert_model([1 + 2.0**-24], DataType.F32) == [1.0]
    assert encoding.convert_model([1 + 2.0**-24 + 2.0**-50], DataType.F32) == [1 + 2.0**-23]
    assert encoding.convert_model([1 + 3 * 2.0**-24], DataType.F32) == [1 + 2 * 2.0**-23]
    assert encoding.convert_model([0.1], DataType.F32) == [struct.unpack("<f", b"\xcd\xcc\xcc=")[0]]
    assert encoding.convert_model([1e-46], DataType.F32) == [0.0]
    assert encoding.convert_model([1e-45], DataType.F32) == [F32_TINY]
    # Just below the overflow threshold F32_MAX + half an ulp: rounds down to F32_MAX.
    assert encoding.convert_model([float(F32_MAX) + 2.0**102], DataType.F32) == [float(F32_MAX)]


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, float(F32_MAX) + 2.0**103, -1e39, 1e300, 10**39, "1.0", None],
)
def test_f32_rejects(value: object) -> None:
    with pytest.raises(ModelError):
        encoding.convert_model([0.0, value], DataType.F32)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**309, None])
def test_f64_rejects(value: object) -> None:
    with pytest.raises(ModelError):
        encoding.convert_model([1.0, value], DataType.F64)


def test_f64_takes_exact_values() -> None:
    values = [0.1, -0.0, 5e-324, 1.7e308, 3, Fraction(1, 3)]
    assert encoding.convert_model(values, DataType.F64) == [0.1, -0.0, 5e-324, 1.7e308, 3.0, 1 / 3]


@pytest.mark.parametrize("data_type", [DataType.F32, DataType.F64])
@pytest.mark.parametrize("value", [True, False])
def test_floats_reject_bools(data_type: DataType, value: bool) -> None:
    # The numpy path rejects boolean models; the pure path must agree.
    with pytest.raises(ModelError):
        encoding.convert_model([1.0, value], data_type)


@pytest.mark.parametrize(("data_type", "limits"), INT_RANGE.items())
def test_int_conversion(data_type: DataType, limits: tuple[int, int]) -> None:
    low, high = limits
    assert encoding.convert_model([low, high, 0, -3.0, 7.0], data_type) == [low, high, 0, -3, 7]
    converted = encoding.convert_model([2.0**30], data_type)
    assert converted == [2**30]
    assert type(converted[0]) is int


@pytest.mark.parametrize(("data_type", "limits"), INT_RANGE.items())
@pytest.mark.parametrize(
    "offender", ["low", "high", 1.5, -0.5, True, False, math.nan, math.inf, "1"]
)
def test_int_conversion_rejects(
    data_type: DataType, limits: tuple[int, int], offender: object
) -> None:
    low, high = limits
    value = {"low": low - 1, "high": high + 1}.get(offender, offender)  # type: ignore[call-overload]
    with pytest.raises(ModelError):
        encoding.convert_model([0, value], data_type)


def test_i64_rejects_float_two_to_the_63() -> None:
    with pytest.raises(ModelError):
        encoding.convert_model([2.0**63], DataType.I64)
    assert encoding.convert_model([-(2.0**63)], DataType.I64) == [-(2**63)]


# -- weighted mean ------------------------------------------------------------------------------


@st.composite
def mean_cases(draw: st.DrawFn) -> tuple[list[int], int, int, MaskConfig, MaskConfig]:
    vect = draw(st.sampled_from(ALL_CONFIGS))
    unit = draw(st.sampled_from(ALL_CONFIGS))
    count = draw(st.integers(min_value=1, max_value=1000))
    top = count * vect.max_element
    sums = draw(
        st.lists(
            st.one_of(
                st.integers(min_value=0, max_value=top),
                st.sampled_from([0, top, top // 2, top // 2 + 1, top // 2 - 1]),
            ),
            min_size=1,
            max_size=6,
        )
    )
    unit_low = count * unit.add_shift * unit.exp_shift
    scalar_sum = draw(
        st.one_of(
            st.integers(min_value=unit_low + 1, max_value=unit_low + count * unit.max_element // 2),
            st.integers(min_value=unit_low + 1, max_value=unit_low + 1000),
        )
    )
    return sums, scalar_sum, count, vect, unit


@settings(deadline=None, max_examples=300)
@given(mean_cases())
def test_weighted_mean_is_correctly_rounded(
    case: tuple[list[int], int, int, MaskConfig, MaskConfig],
) -> None:
    sums, scalar_sum, count, vect, unit = case
    weight = Fraction(scalar_sum - count * bound(unit) * exp_shift(unit), exp_shift(unit))
    exact = [
        Fraction(s - count * bound(vect) * exp_shift(vect), exp_shift(vect)) / weight for s in sums
    ]
    try:
        expected = [float(x) for x in exact]
    except OverflowError:
        # A mean beyond the float range (possible with a unit grid much finer than the vector's).
        with pytest.raises(AggregationError) as info:
            encoding.weighted_mean(sums, scalar_sum, count, vect, unit)
        assert info.value.reason == "not_representable"
        return
    assert encoding.weighted_mean(sums, scalar_sum, count, vect, unit) == expected


def test_weighted_mean_worked_example() -> None:
    # Spec section 2.8: two models 0.5 and -0.25 with scalars 1 -> 0.125.
    config = MaskConfig.from_names("Prime", "F32", "B0", "M3")
    sums = [15 * 10**9 + 75 * 10**8]
    assert encoding.weighted_mean(sums, 4 * 10**10, 2, config, config) == [0.125]


def test_weighted_mean_ties_round_to_even() -> None:
    config = MaskConfig.from_names("Integer", "I64", "B0", "M3")  # B = 1, E = 1e10
    be = 10**10
    # v / weight with weight = 1 (scalar sum 1e-10): (2^53 + 1) is a tie -> 2^53 (even);
    # (2^53 + 3) is a tie -> 2^53 + 4.
    sums = [be + 2**53 + 1, be + 2**53 + 3]
    assert encoding.weighted_mean(sums, be + 1, 1, config, config) == [2.0**53, 2.0**53 + 4]


@pytest.mark.parametrize("count", [1, 2, 1000])
def test_weighted_mean_zero_weight(count: int) -> None:
    config = MaskConfig.from_names("Prime", "F32", "B0", "M3")
    scalar_sum = count * 10**10  # every scalar 0: y_0 = B * E
    with pytest.raises(AggregationError) as info:
        encoding.weighted_mean([count * 10**10], scalar_sum, count, config, config)
    assert info.value.reason == "zero_weight"
