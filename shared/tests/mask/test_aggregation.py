"""Aggregation and unmasking: exactness, the error cases, and pure == numpy."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaynet.errors import AggregationError, LocalProtocolError
from xaynet.mask import (
    Aggregation,
    DataType,
    MaskConfig,
    MaskConfigPair,
    MaskObject,
    MaskUnit,
    MaskVect,
    derive_mask,
    mask_model,
)

from .support import (
    ALL_CONFIGS,
    NUMPY_CONFIGS,
    bound,
    clamped_scalar,
    exact_mean,
    exp_shift,
    expected_scalar_y,
    pair,
    round_to_f32,
)

pytestmark = pytest.mark.usefixtures("prg")

DEFAULT = pair("Prime", "F32", "B0", "M3")
PATHS = ["pure", pytest.param("numpy", marks=pytest.mark.numpy)]


def _seed(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8


def run_round(
    config: MaskConfigPair,
    models: list[list[Any]],
    scalars: list[Any],
    path: str = "pure",
) -> list[float]:
    """Mask, aggregate, derive and sum the masks, unmask: the whole masking part of a round."""
    length = len(models[0])
    aggregate = Aggregation(config, length, path=path)  # type: ignore[arg-type]
    masks = Aggregation(config, length, path=path)  # type: ignore[arg-type]
    for i, (model, scalar) in enumerate(zip(models, scalars, strict=True)):
        aggregate.add(mask_model(_seed(i), model, config=config, scalar=scalar, path=path))  # type: ignore[arg-type]
        masks.add(derive_mask(_seed(i), config=config, length=length, path=path))  # type: ignore[arg-type]
    assert aggregate.count == masks.count == len(models)
    return aggregate.unmask(masks.result())


def _convert(model: list[Any], data_type: DataType) -> list[Any]:
    if data_type is DataType.F32:
        return [round_to_f32(v) for v in model]
    if data_type is DataType.F64:
        return [float(v) for v in model]
    return model


def check_against_definition(
    config: MaskConfigPair, models: list[list[Any]], scalars: list[Any], result: list[float]
) -> None:
    """``result`` is the exact truncated weighted mean, correctly rounded, and within the
    quantization bound of the ideal weighted mean of the clamped values."""
    vect, unit = config.vect, config.unit
    converted = [_convert(m, vect.data_type) for m in models]
    clamped = [clamped_scalar(Fraction(s), unit) for s in scalars]
    exact = exact_mean(converted, clamped, config)
    assert result == [float(x) for x in exact]
    assert not any(math.isnan(v) for v in result)
    # Against the ideal mean sum_j x_ij / sum_j s'_j (no truncation): with X, S the ideal sums
    # and T, U the truncated ones, 0 <= X - T < N/E and 0 <= S - U < N/E1, so
    # |T/U - X/S| <= N/(E U) + |X/S| N/(E1 U).
    n, e_v, e_u = len(models), exp_shift(vect), exp_shift(unit)
    u = sum(Fraction(expected_scalar_y(s, unit), e_u) - bound(unit) for s in clamped)
    s_sum = sum(clamped, Fraction(0))
    b = Fraction(bound(vect))
    for i, value in enumerate(result):
        x_sum = sum(
            (min(max(s * Fraction(m[i]), -b), b) for m, s in zip(converted, clamped, strict=True)),
            Fraction(0),
        )
        ideal = x_sum / s_sum
        limit = Fraction(n, e_v) / u + abs(ideal) * Fraction(n, e_u) / u
        assert abs(exact[i] - ideal) <= limit
        assert abs(Fraction(value) - ideal) <= limit + Fraction(math.ulp(value))


def _values(config: MaskConfig, rng: random.Random, length: int) -> list[Any]:
    b = bound(config)
    if config.data_type in (DataType.I32, DataType.I64):
        top = 2**31 - 1 if config.data_type is DataType.I32 else 2**63 - 1
        pool = [0, 1, -1, min(b, top), -min(b, top), top, -top - 1]
        return [
            rng.choice(pool) if rng.random() < 0.3 else rng.randint(-min(b, top), min(b, top))
            for _ in range(length)
        ]
    limit = float(min(b, 3.4e38 if config.data_type is DataType.F32 else 1.7e308))
    pool_f = [0.0, -0.0, limit, -limit, limit * 2 if limit < 1e38 else -limit, 1e-30]
    return [
        rng.choice(pool_f) if rng.random() < 0.3 else rng.uniform(-1, 1) * limit
        for _ in range(length)
    ]


@pytest.mark.parametrize("data_type", list(DataType), ids=lambda d: d.name)
def test_unmask_is_the_weighted_mean_every_config(data_type: DataType) -> None:
    rng = random.Random(int(data_type))
    for config in ALL_CONFIGS:
        if config.data_type is not data_type:
            continue
        count = rng.randint(1, 4)
        models = [_values(config, rng, 3) for _ in range(count)]
        b_unit = bound(config)
        scalars: list[Any] = [
            rng.choice([1, 0, 0.5, 3, b_unit, b_unit * 10, 1e-3]) for _ in range(count)
        ]
        scalars[rng.randrange(count)] = rng.choice([1, 2.5, Fraction(1, 3)])  # not all zero
        p = MaskConfigPair.uniform(config)
        check_against_definition(p, models, scalars, run_round(p, models, scalars))


@st.composite
def round_cases(draw: st.DrawFn) -> tuple[MaskConfigPair, list[list[Any]], list[Any]]:
    vect = draw(st.sampled_from(ALL_CONFIGS))
    unit = draw(st.one_of(st.just(vect), st.sampled_from(ALL_CONFIGS)))
    count = draw(st.integers(min_value=1, max_value=5))
    length = draw(st.integers(min_value=1, max_value=4))
    rng = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    models = [_values(vect, rng, length) for _ in range(count)]
    scalar = st.one_of(
        st.sampled_from([0, 1, 0.1, 137.0, Fraction(1, 3), bound(unit), 10 * bound(unit)]),
        st.floats(min_value=0, max_value=1e6),
    )
    scalars = draw(st.lists(scalar, min_size=count, max_size=count))
    scalars[0] = draw(st.sampled_from([1, 0.75, 2, 1e-3]))
    return MaskConfigPair(vect, unit), models, scalars


@settings(deadline=None, max_examples=120)
@given(round_cases())
def test_unmask_is_the_weighted_mean(
    case: tuple[MaskConfigPair, list[list[Any]], list[Any]],
) -> None:
    config, models, scalars = case
    if exp_shift(config.unit) > 10**30 and exp_shift(config.vect) <= 10**30:
        # A unit grid much finer than the vector's can divide by a tiny scalar sum: the exact
        # mean may leave the float range (see test_unmask_beyond_the_float_range).
        clamped = [clamped_scalar(Fraction(s), config.unit) for s in scalars]
        converted = [_convert(m, config.vect.data_type) for m in models]
        try:
            [float(x) for x in exact_mean(converted, clamped, config)]
        except OverflowError:
            with pytest.raises(AggregationError) as info:
                run_round(config, models, scalars)
            assert info.value.reason == "not_representable"
            return
    result = run_round(config, models, scalars)
    check_against_definition(config, models, scalars, result)


def test_worked_example() -> None:
    # Spec section 2.8: 0.5 and -0.25 with scalars 1 -> 0.125.
    assert run_round(DEFAULT, [[0.5], [-0.25]], [1, 1]) == [0.125]


@pytest.mark.parametrize("path", PATHS)
def test_equal_scalars_give_the_plain_mean(path: str) -> None:
    models = [[0.5, -1.0, 0.25, 1.0], [0.25, 1.0, -0.25, 1.0], [0.0, 1.5, 0.0, 1.0]]
    for scalar in (1, 0.5, 7):
        config = pair("Prime", "F32", "B2", "M3")
        result = run_round(config, models, [scalar] * 3, path)
        assert result == [0.25, 0.5, 0.0, 1.0]


@pytest.mark.parametrize("path", PATHS)
def test_zero_scalar_models_do_not_count(path: str) -> None:
    result = run_round(DEFAULT, [[0.5, 0.5], [-1.0, 1.0], [0.25, -0.75]], [1, 0, 1], path)
    assert result == [0.375, -0.125]


@pytest.mark.parametrize("path", PATHS)
def test_clamping(path: str) -> None:
    # B0: s' = min(s, 1); x = clamp(s' * w, -1, 1).
    result = run_round(DEFAULT, [[5.0, -5.0, 0.5]], [10], path)
    assert result == [1.0, -1.0, 0.5]
    # x = clamp(0.5 * 5) = 1 and 0: sum 1 over the scalar sum 1.
    result = run_round(DEFAULT, [[5.0, -5.0, 0.5], [0.0, 0.0, 0.0]], [0.5, 0.5], path)
    assert result == [1.0, -1.0, 0.25]


@pytest.mark.parametrize("path", PATHS)
def test_all_scalars_zero(path: str) -> None:
    with pytest.raises(AggregationError) as info:
        run_round(DEFAULT, [[0.5], [0.25]], [0, 0], path)
    assert info.value.reason == "zero_weight"


FEDAVG = pair("Prime", "F32", "B2", "M3")  # |s w| <= 60 <= B = 100; scalars <= B_unit = 100
COUNTS = [10, 30, 60]
FEDAVG_MODELS = [
    [0.5, -1.0, 0.125, 0.9, -0.3],
    [-0.5, 1.0, 0.75, 0.1, 0.2],
    [1.0, 0.25, -0.5, -0.9, 0.6],
]


def test_fedavg_weights_by_sample_count() -> None:
    result = run_round(FEDAVG, FEDAVG_MODELS, COUNTS)
    total = sum(COUNTS)
    for i, value in enumerate(result):
        column = [Fraction(round_to_f32(m[i])) for m in FEDAVG_MODELS]  # type: ignore[arg-type]
        weighted = sum((c * v for c, v in zip(COUNTS, column, strict=True)), Fraction(0)) / total
        plain = sum(column, Fraction(0)) / len(column)
        assert abs(Fraction(value) - weighted) <= Fraction(3, 10**10 * total) + Fraction(
            math.ulp(value)
        )
        if abs(weighted - plain) > Fraction(1, 100):
            assert abs(Fraction(value) - plain) > Fraction(1, 200)
    assert any(
        abs(Fraction(result[i]) - sum(Fraction(round_to_f32(m[i])) for m in FEDAVG_MODELS) / 3)  # type: ignore[arg-type]
        > Fraction(1, 10)
        for i in range(5)
    )


@pytest.mark.numpy
@pytest.mark.parametrize("path", ["pure", "numpy"])
def test_fedavg_matches_numpy_average(path: str) -> None:
    import numpy as np

    models = np.array(FEDAVG_MODELS, dtype=np.float32)
    result = np.array(run_round(FEDAVG, [list(m) for m in models], COUNTS, path))
    expected = np.average(models.astype(np.float64), axis=0, weights=COUNTS)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-9)
    plain = models.astype(np.float64).mean(axis=0)
    assert np.max(np.abs(result - plain)) > 0.1


# -- the modular sum ------------------------------------------------------------------------------


def _random_object(config: MaskConfigPair, length: int, rng: random.Random) -> MaskObject:
    qv, qu = config.vect.order, config.unit.order
    elements = [rng.choice([0, qv - 1, rng.randrange(qv)]) for _ in range(length)]
    return MaskObject(
        MaskVect.from_elements(config.vect, elements),
        MaskUnit(config.unit, rng.choice([0, qu - 1, rng.randrange(qu)])),
    )


def _configs_for(path: str) -> list[MaskConfig]:
    pool = NUMPY_CONFIGS if path == "numpy" else ALL_CONFIGS
    return pool[:: max(1, len(pool) // 24)]


@pytest.mark.parametrize("path", PATHS)
def test_result_is_the_modular_sum(path: str) -> None:
    rng = random.Random(5)
    for config in _configs_for(path):
        p = MaskConfigPair.uniform(config)
        length = rng.randint(1, 9)
        objects = [_random_object(p, length, rng) for _ in range(rng.randint(1, 6))]
        agg = Aggregation(p, length, path=path)  # type: ignore[arg-type]
        for obj in objects:
            agg.add(obj)
        result = agg.result()
        q = config.order
        assert result.vect.elements() == [
            sum(o.vect.elements()[i] for o in objects) % q for i in range(length)
        ]
        assert result.unit.value == sum(o.unit.value for o in objects) % q
        assert result.config == p
        assert agg.result() == result  # reading the result changes nothing


@pytest.mark.parametrize("path", PATHS)
def test_lazy_reduction(path: str) -> None:
    # Force a reduction every few additions; the sums of maximal elements must stay exact.
    rng = random.Random(9)
    for config in _configs_for(path):
        p = MaskConfigPair.uniform(config)
        agg = Aggregation(p, 3, path=path)  # type: ignore[arg-type]
        agg._vector._max_pending = 3
        q = config.order
        objects = [
            MaskObject(MaskVect.from_elements(config, [q - 1, q - 1, 0]), MaskUnit(config, q - 1))
            for _ in range(5)
        ] + [_random_object(p, 3, rng) for _ in range(6)]
        for obj in objects:
            agg.add(obj)
        assert agg.result().vect.elements() == [
            sum(o.vect.elements()[i] for o in objects) % q for i in range(3)
        ]


@pytest.mark.numpy
def test_numpy_lazy_reduction_real_threshold() -> None:
    # Power2/B2/M6: q = 2^61, so only 8 elements fit a uint64 lane before a reduction.
    config = MaskConfig.from_names("Power2", "F32", "B2", "M6")
    p = MaskConfigPair.uniform(config)
    q = config.order
    assert q == 2**61
    agg = Aggregation(p, 2, path="numpy")
    obj = MaskObject(MaskVect.from_elements(config, [q - 1, 1]), MaskUnit(config, q - 1))
    for _ in range(40):
        agg.add(obj)
    assert agg.result().vect.elements() == [(40 * (q - 1)) % q, 40]


def test_pure_lazy_reduction_real_threshold() -> None:
    # The pure path's 16 guard bits allow 65 535 additions before a reduction.
    config = MaskConfig.from_names("Prime", "F32", "B0", "M6")
    p = MaskConfigPair.uniform(config)
    q = config.order
    agg = Aggregation(p, 1, path="pure")
    obj = MaskObject(MaskVect.from_elements(config, [q - 1]), MaskUnit(config, q - 1))
    n = 65_540
    for _ in range(n):
        agg.add(obj)
    assert agg.result().vect.elements() == [n * (q - 1) % q]
    assert agg.result().unit.value == n * (q - 1) % q


# -- errors ----------------------------------------------------------------------------------------


def _reason(agg: Aggregation, obj: object) -> str:
    before = agg.result().to_bytes() if agg.count else None
    count = agg.count
    with pytest.raises(AggregationError) as info:
        agg.validate(obj)  # type: ignore[arg-type]
    with pytest.raises(AggregationError):
        agg.add(obj)  # type: ignore[arg-type]
    # A rejected object leaves the aggregate unchanged.
    assert agg.count == count
    if before is not None:
        assert agg.result().to_bytes() == before
    return info.value.reason


def _zero(config: MaskConfigPair, length: int) -> MaskObject:
    return MaskObject(MaskVect.from_elements(config.vect, [0] * length), MaskUnit(config.unit, 0))


@pytest.mark.parametrize("path", PATHS)
def test_config_mismatch(path: str) -> None:
    agg = Aggregation(DEFAULT, 2, path=path)  # type: ignore[arg-type]
    agg.add(mask_model(_seed(1), [0.5, 0.5], config=DEFAULT, path="pure"))
    other = pair("Power2", "F32", "B0", "M3")
    assert _reason(agg, _zero(other, 2)) == "config_mismatch"
    assert _reason(agg, _zero(MaskConfigPair(DEFAULT.vect, other.unit), 2)) == "config_mismatch"
    assert _reason(agg, _zero(MaskConfigPair(other.vect, DEFAULT.unit), 2)) == "config_mismatch"


@pytest.mark.parametrize("path", PATHS)
def test_length_mismatch(path: str) -> None:
    agg = Aggregation(DEFAULT, 3, path=path)  # type: ignore[arg-type]
    agg.add(_zero(DEFAULT, 3))
    assert _reason(agg, _zero(DEFAULT, 2)) == "length_mismatch"
    assert _reason(agg, _zero(DEFAULT, 4)) == "length_mismatch"
    assert _reason(agg, _zero(DEFAULT, 0)) == "length_mismatch"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "config",
    [DEFAULT, MaskConfigPair(DEFAULT.vect, MaskConfig.from_names("Prime", "F32", "B0", "M6"))],
    ids=["uniform", "unit-M6"],
)
def test_too_many_models(path: str, config: MaskConfigPair) -> None:
    assert config.max_models == 1000
    agg = Aggregation(config, 1, path=path)  # type: ignore[arg-type]
    zero = _zero(config, 1)
    for _ in range(1000):
        agg.add(zero)
    assert agg.count == 1000
    assert _reason(agg, zero) == "too_many_models"


def test_too_many_models_bounded_by_the_vector_config() -> None:
    config = MaskConfigPair(
        MaskConfig.from_names("Prime", "F32", "B0", "M3"),
        MaskConfig.from_names("Prime", "F32", "B0", "M6"),
    )
    assert MaskConfigPair(config.unit, config.vect).max_models == 1000


def _with_element(config: MaskConfigPair, length: int, index: int, value: int) -> MaskObject:
    width = config.vect.bytes_per_element
    data = bytearray(length * width)
    data[index * width : (index + 1) * width] = value.to_bytes(width, "little")
    return MaskObject(MaskVect(config.vect, bytes(data)), MaskUnit(config.unit, 0))


@pytest.mark.parametrize("path", PATHS)
def test_out_of_range(path: str) -> None:
    for config in _configs_for(path):
        p = MaskConfigPair.uniform(config)
        q, width = config.order, config.bytes_per_element
        agg = Aggregation(p, 5, path=path)  # type: ignore[arg-type]
        agg.add(_random_object(p, 5, random.Random(1)))
        candidates = [q, q + 1, 256**width - 1] if q < 256**width else []
        for index in (0, 2, 4):
            for bad in candidates:
                assert _reason(agg, _with_element(p, 5, index, bad)) == "out_of_range", config
            agg.validate(_with_element(p, 5, index, q - 1))
        if q < 256**width:
            bad_unit = MaskObject(MaskVect.from_elements(config, [0] * 5), MaskUnit(config, q))
            assert _reason(agg, bad_unit) == "out_of_range"
        assert agg.count == 1


@pytest.mark.parametrize("path", PATHS)
def test_no_model(path: str) -> None:
    agg = Aggregation(DEFAULT, 2, path=path)  # type: ignore[arg-type]
    with pytest.raises(AggregationError) as info:
        agg.unmask(_zero(DEFAULT, 2))
    assert info.value.reason == "no_model"
    with pytest.raises(AggregationError) as info:
        agg.result()
    assert info.value.reason == "no_model"


@pytest.mark.parametrize("path", PATHS)
def test_unmask_checks_the_mask(path: str) -> None:
    agg = Aggregation(DEFAULT, 2, path=path)  # type: ignore[arg-type]
    agg.add(mask_model(_seed(0), [0.5, 0.25], config=DEFAULT, path="pure"))
    cases = {
        "config_mismatch": _zero(pair("Integer", "F32", "B0", "M3"), 2),
        "length_mismatch": _zero(DEFAULT, 3),
        "out_of_range": _with_element(DEFAULT, 2, 1, DEFAULT.vect.order),
    }
    for reason, mask in cases.items():
        with pytest.raises(AggregationError) as info:
            agg.unmask(mask)
        assert info.value.reason == reason
    mask = derive_mask(_seed(0), config=DEFAULT, length=2, path="pure")
    assert agg.unmask(mask) == [0.5, 0.25]
    assert agg.unmask(mask) == [0.5, 0.25]  # unmasking does not consume the aggregate


def test_bad_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        Aggregation(DEFAULT.vect, 2)  # type: ignore[arg-type]
    for length in (0, -1, True, 1.0, "2"):
        with pytest.raises(LocalProtocolError):
            Aggregation(DEFAULT, length)  # type: ignore[arg-type]
    agg = Aggregation(DEFAULT, 1, path="pure")
    with pytest.raises(LocalProtocolError):
        agg.add(b"not an object")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Aggregation(pair("Prime", "F64", "B0", "M3"), 1, path="numpy")


@pytest.mark.parametrize("path", PATHS)
def test_unmask_beyond_the_float_range(path: str) -> None:
    # Unit F64/Bmax (E1 = 1e324) with subnormal scalars and a vector on the 1e-10 grid: a
    # negative value truncates to -1e-10, divided by a scalar sum near 1e-318. The exact mean
    # leaves the float range; both paths must say so the same way.
    config = MaskConfigPair(
        MaskConfig.from_names("Prime", "F32", "B0", "M3"),
        MaskConfig.from_names("Prime", "F64", "Bmax", "M3"),
    )
    assert run_round(config, [[0.5, 0.0]], [5e-324], path) == [0.0, 0.0]
    # 1e324 / (1e10 * weight) itself overflows (weight 4) ...
    with pytest.raises(AggregationError) as info:
        run_round(config, [[-0.5]], [5e-324], path)
    assert info.value.reason == "not_representable"
    # ... or is finite (about 1.7e308) but the mean of two -1e-10 values is not.
    with pytest.raises(AggregationError) as info:
        run_round(config, [[-0.5], [-0.5]], [3e-319, 3e-319], path)
    assert info.value.reason == "not_representable"


# -- pure == numpy over whole rounds ------------------------------------------------------------


@st.composite
def numpy_rounds(draw: st.DrawFn) -> tuple[MaskConfigPair, list[list[Any]], list[Any]]:
    vect = draw(st.sampled_from(NUMPY_CONFIGS))
    unit = draw(st.one_of(st.just(vect), st.just(vect), st.sampled_from(ALL_CONFIGS)))
    count = draw(st.integers(min_value=1, max_value=10))
    length = draw(st.integers(min_value=1, max_value=200))
    b = bound(vect)
    if vect.data_type is DataType.F32:
        fb = float(b)
        value = st.one_of(
            st.floats(min_value=-2 * fb, max_value=2 * fb, width=32),
            st.sampled_from(
                [
                    0.0,
                    -0.0,
                    fb,
                    -fb,
                    math.nextafter(fb, 0),
                    -math.nextafter(fb, 0),
                    fb * (1 + 2**-23),
                    1e-45,
                    1e-30,
                    3e38,
                    -3e38,
                ]
            ),
            st.integers(min_value=-(10**10), max_value=10**10).map(lambda k: k / 10**10),
        )
    else:
        top = 2**31 - 1 if vect.data_type is DataType.I32 else 2**63 - 1
        value = st.one_of(
            st.integers(min_value=-top - 1, max_value=top),
            st.integers(min_value=-2 * b, max_value=2 * b),
            st.sampled_from([0, 1, -1, b, -b, top, -top - 1]),
        )
    models = draw(
        st.lists(st.lists(value, min_size=length, max_size=length), min_size=count, max_size=count)
    )
    scalar = st.one_of(
        st.sampled_from([0, 1, 0.1, 137.0, 1e-300, 1 / 3, 1e-10, 5e-324]),
        st.floats(min_value=0, max_value=1e4),
        st.fractions(min_value=0, max_value=10, max_denominator=99),
    )
    scalars = draw(st.lists(scalar, min_size=count, max_size=count))
    return MaskConfigPair(vect, unit), models, scalars


def _outcome(
    config: MaskConfigPair, models: list[list[Any]], scalars: list[Any], path: str
) -> tuple[bytes, bytes, object]:
    length = len(models[0])
    aggregate = Aggregation(config, length, path=path)  # type: ignore[arg-type]
    masks = Aggregation(config, length, path=path)  # type: ignore[arg-type]
    for i, (model, scalar) in enumerate(zip(models, scalars, strict=True)):
        aggregate.add(mask_model(_seed(i), model, config=config, scalar=scalar, path=path))  # type: ignore[arg-type]
        masks.add(derive_mask(_seed(i), config=config, length=length, path=path))  # type: ignore[arg-type]
    outcome: object
    try:
        outcome = aggregate.unmask(masks.result())
    except AggregationError as exc:
        outcome = exc.reason
    return aggregate.result().to_bytes(), masks.result().to_bytes(), outcome


@pytest.mark.numpy
@settings(deadline=None, max_examples=60)
@given(numpy_rounds())
def test_rounds_pure_equal_numpy(case: tuple[MaskConfigPair, list[list[Any]], list[Any]]) -> None:
    config, models, scalars = case
    pure = _outcome(config, models, scalars, "pure")
    fast = _outcome(config, models, scalars, "numpy")
    assert pure[:2] == fast[:2]
    assert pure[2] == fast[2]
    if isinstance(pure[2], list):
        assert not any(math.isnan(v) for v in pure[2])
        # Bit-identical floats (== would equate 0.0 and -0.0).
        assert [math.copysign(1, v) for v in pure[2]] == [math.copysign(1, v) for v in fast[2]]  # type: ignore[union-attr]


@pytest.mark.numpy
def test_unmask_array() -> None:
    import numpy as np

    models = [[0.5, -0.25, 1.0], [0.25, 0.25, -1.0]]
    for path in ("pure", "numpy"):
        aggregate = Aggregation(DEFAULT, 3, path=path)  # type: ignore[arg-type]
        masks = Aggregation(DEFAULT, 3, path=path)  # type: ignore[arg-type]
        for i, model in enumerate(models):
            aggregate.add(mask_model(_seed(i), model, config=DEFAULT, path=path))  # type: ignore[arg-type]
            masks.add(derive_mask(_seed(i), config=DEFAULT, length=3, path=path))  # type: ignore[arg-type]
        array = aggregate.unmask_array(masks.result())
        assert array.dtype == np.float64
        assert array.tolist() == [0.375, 0.0, 0.0]
        assert array.tolist() == aggregate.unmask(masks.result())


@pytest.mark.numpy
@settings(deadline=None, max_examples=300)
@given(st.data())
def test_numpy_weighted_mean_matches_exact(data: st.DataObject) -> None:
    # Sums crafted near rounding ties: v = 2^53 + odd is exactly half-way when the factor is a
    # power of two, and weights of the form 2^k, 3 * 2^k, 10^j stress the double-double path.
    import numpy as np

    from xaynet.mask import _numpy, encoding

    vect = data.draw(st.sampled_from(NUMPY_CONFIGS))
    unit = data.draw(st.one_of(st.just(vect), st.sampled_from(ALL_CONFIGS)))
    count = data.draw(st.sampled_from([1, 2, 3, 7, 100, 1000]))
    count = min(count, vect.max_models)
    offset = count * vect.add_shift * vect.exp_shift
    weight = data.draw(
        st.one_of(
            st.integers(min_value=0, max_value=60).map(lambda k: 2**k),
            st.integers(min_value=0, max_value=58).map(lambda k: 3 * 2**k),
            st.integers(min_value=0, max_value=17).map(lambda j: 10**j),
            st.integers(min_value=1, max_value=2**62),
        )
    )
    scalar_sum = count * unit.add_shift * unit.exp_shift + weight
    v = st.one_of(
        st.integers(min_value=53, max_value=60).flatmap(
            lambda e: st.integers(min_value=0, max_value=2**20).map(lambda i: 2**e + 2 * i + 1)
        ),
        st.integers(min_value=-offset, max_value=vect.order - 1 - offset),
        st.integers(min_value=-1000, max_value=1000).map(lambda k: k * weight),
        # v / weight = odd / 2^j with a 54-bit odd numerator: an exact tie between two floats
        # that the double-double value (the factor 1/(odd part) is inexact) cannot decide.
        st.tuples(st.integers(min_value=0, max_value=2**20), st.sampled_from([1, -1])).map(
            lambda t: t[1] * (2**53 + 2 * t[0] + 1) * (weight // (weight & -weight))
        ),
    )
    vs = data.draw(st.lists(v, min_size=1, max_size=30))
    sums = [x + offset for x in vs if 0 <= x + offset < vect.order]
    if not sums:
        return
    try:
        exact: object = encoding.weighted_mean(sums, scalar_sum, count, vect, unit)
    except AggregationError as exc:
        exact = exc.reason
    try:
        fast: object = _numpy.weighted_mean(
            np.array(sums, dtype=np.uint64), scalar_sum, count, vect, unit
        ).tolist()
    except AggregationError as exc:
        fast = exc.reason
    assert fast == exact


@pytest.mark.numpy
@pytest.mark.parametrize("bounds", [("B2", "M6"), ("B4", "M3")])
def test_numpy_weighted_mean_exact_ties(bounds: tuple[str, str]) -> None:
    # weight = odd * 2^k and v = odd * (2^53 + 2i + 1): the mean is exactly half-way between two
    # floats, but the factor 1/weight is not a float, so the double-double value can land on
    # either side; the numpy path must notice and round the exact tie to even, as Python does.
    import numpy as np

    from xaynet.mask import _numpy, encoding

    config = MaskConfig.from_names("Power2", "F32", *bounds)
    rng = random.Random(3)
    for count in (1, 2):
        offset = count * config.add_shift * config.exp_shift
        for _ in range(100):
            odd = rng.choice([3, 5, 7, 9, 11, 13, 15, 21, 25, 27, 31])
            weight = odd * 2 ** rng.randint(0, 40)
            scalar_sum = offset + weight
            vs = [
                rng.choice([1, -1]) * odd * (2**53 + 2 * rng.randrange(2**20) + 1)
                for _ in range(20)
            ]
            # Ties just below a power of two, where the float spacing halves: 2^54 - 1 over 2^j.
            vs += [odd * (2**54 - 1), -odd * (2**54 - 1), odd * (2**55 - 1)]
            sums = [v + offset for v in vs if 0 <= v + offset < config.order]
            fast = _numpy.weighted_mean(
                np.array(sums, dtype=np.uint64), scalar_sum, count, config, config
            ).tolist()
            assert fast == encoding.weighted_mean(sums, scalar_sum, count, config, config)


@pytest.mark.parametrize("path", PATHS)
def test_restore_continues_a_saved_aggregate(path: str) -> None:
    rng = random.Random(11)
    config = MaskConfigPair.uniform(_configs_for(path)[0])
    objects = [_random_object(config, 5, rng) for _ in range(5)]
    whole = Aggregation(config, 5, path=path)  # type: ignore[arg-type]
    for obj in objects:
        whole.add(obj)
    first = Aggregation(config, 5, path=path)  # type: ignore[arg-type]
    for obj in objects[:3]:
        first.add(obj)
    resumed = Aggregation(config, 5, path=path)  # type: ignore[arg-type]
    resumed.restore(first.result(), first.count)
    for obj in objects[3:]:
        resumed.add(obj)
    assert resumed.count == 5
    assert resumed.result() == whole.result()
    with pytest.raises(LocalProtocolError):
        resumed.restore(first.result(), 3)  # only an empty aggregation
    with pytest.raises(AggregationError) as info:
        Aggregation(config, 5, path=path).restore(  # type: ignore[arg-type]
            first.result(), config.max_models + 1
        )
    assert info.value.reason == "too_many_models"
