"""Masking a model: the definition (encoding + mask mod q), misuse errors, and pure == numpy."""

from __future__ import annotations

import math
import struct
import sys
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaynet.errors import LocalProtocolError, ModelError
from xaynet.mask import (
    DataType,
    MaskConfig,
    MaskConfigPair,
    derive_mask,
    encoding,
    mask_model,
    masking,
)

from .support import (
    ALL_CONFIGS,
    NUMPY_CONFIGS,
    bound,
    clamped_scalar,
    expected_scalar_y,
    expected_y,
    naive_mask,
    pair,
    round_to_f32,
)

pytestmark = pytest.mark.usefixtures("prg")

DEFAULT = pair("Prime", "F32", "B0", "M3")
SEED = bytes(range(32))
F32_TINY = struct.unpack("<f", b"\x01\x00\x00\x00")[0]


def _model_for(config: MaskConfig, length: int) -> list[Any]:
    """Values that hit the clamp, zero, tiny and mid-range values of ``config``."""
    b = bound(config)
    if config.data_type in (DataType.I32, DataType.I64):
        top = 2**31 - 1 if config.data_type is DataType.I32 else 2**63 - 1
        pool: list[Any] = [0, 1, -1, min(b, top), -min(b, top), top, -top - 1, 12345, -777]
    else:
        limit = float(min(b, 3.4e38)) if config.data_type is DataType.F32 else float(b)
        pool = [0.0, -0.0, limit, -limit, 0.1, -1 / 3, F32_TINY, 1e-30, 3e38, -3e38, 0.5]
    return [pool[i % len(pool)] for i in range(length)]


def _converted(values: list[Any], data_type: DataType) -> list[Any]:
    if data_type is DataType.F32:
        return [round_to_f32(v) for v in values]
    return values


@pytest.mark.parametrize("scalar", [1, 0, 0.1, Fraction(7, 3), 10**5, 5e-324])
def test_mask_model_definition_every_config(scalar: object) -> None:
    # m_i = (floor((clamp(s'w_i) + B) E) + r_i) mod q and m_0 = (y_0 + r_0) mod q_1, where r is
    # the mask of the seed by the documented sampling rule.
    for config in ALL_CONFIGS:
        p = MaskConfigPair.uniform(config)
        model = _model_for(config, 11)
        obj = mask_model(SEED, model, config=p, scalar=scalar, path="pure")  # type: ignore[arg-type]
        r0, r, _ = naive_mask(SEED, p, len(model))
        s = clamped_scalar(Fraction(scalar), config)  # type: ignore[arg-type]
        values = _converted(model, config.data_type)
        q = config.order
        assert obj.vect.elements() == [
            (expected_y(v, s, config) + ri) % q for v, ri in zip(values, r, strict=True)
        ], config
        assert obj.unit.value == (expected_scalar_y(s, config) + r0) % q
        assert obj.config == p


@pytest.mark.parametrize(
    "config",
    [
        MaskConfig.from_names("Power2", "F32", "B0", "M3"),
        MaskConfig.from_names("Prime", "F32", "B0", "M3"),
        MaskConfig.from_names("Power2", "I64", "B4", "M3"),
        MaskConfig.from_names("Integer", "F64", "B0", "M3"),
    ],
    ids=str,
)
@pytest.mark.parametrize("path", ["pure", pytest.param("numpy", marks=pytest.mark.numpy)])
def test_mask_model_wraps_modulo_q(config: MaskConfig, path: str) -> None:
    # y + r exceeds q only when r > q - y: with y at its maximum 2BE (about q / Nmax) that is
    # one element in a thousand, so a long model at the upper clamp makes sure it happens.
    if path == "numpy" and not config.numpy_compatible:
        pytest.skip("the numpy path does not serve this config")
    p = MaskConfigPair.uniform(config)
    length = 20_000
    top = bound(config) if config.data_type is DataType.I64 else float(bound(config))
    obj = mask_model(SEED, [top] * length, config=p, path=path)  # type: ignore[arg-type]
    _, r, _ = naive_mask(SEED, p, length)
    y, q = config.max_element, config.order
    assert sum(y + ri >= q for ri in r) >= 5
    assert obj.vect.elements() == [(y + ri) % q for ri in r]


def test_mask_model_with_separate_unit_config() -> None:
    vect = MaskConfig.from_names("Power2", "F32", "B2", "M6")
    unit = MaskConfig.from_names("Integer", "F64", "B6", "M3")
    p = MaskConfigPair(vect, unit)
    obj = mask_model(SEED, [1.5, -2.0], config=p, scalar=3.25, path="pure")
    r0, r, _ = naive_mask(SEED, p, 2)
    s = Fraction(13, 4)
    assert obj.vect.elements() == [
        (expected_y(v, s, vect) + ri) % vect.order for v, ri in zip([1.5, -2.0], r, strict=True)
    ]
    assert obj.unit.value == (expected_scalar_y(s, unit) + r0) % unit.order
    assert obj.unit.config == unit


def test_masked_model_hides_the_model() -> None:
    a = mask_model(SEED, [0.5] * 8, config=DEFAULT, path="pure")
    b = mask_model(bytes(32), [0.5] * 8, config=DEFAULT, path="pure")
    assert a.vect.data != b.vect.data
    assert len(set(a.vect.elements())) == 8  # equal values, different masked elements


def test_mask_model_empty_model() -> None:
    obj = mask_model(SEED, [], config=DEFAULT, path="pure")
    assert len(obj) == 0


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "x" * 32, None, 0])
def test_mask_model_rejects_bad_seed(seed: object) -> None:
    with pytest.raises(LocalProtocolError):
        mask_model(seed, [0.0], config=DEFAULT, path="pure")  # type: ignore[arg-type]


def test_mask_model_accepts_bytes_like_seeds() -> None:
    expected = mask_model(SEED, [0.25], config=DEFAULT, path="pure")
    assert mask_model(bytearray(SEED), [0.25], config=DEFAULT, path="pure") == expected
    assert mask_model(memoryview(SEED), [0.25], config=DEFAULT, path="pure") == expected


@pytest.mark.parametrize(
    "scalar", [-1, -0.0001, math.nan, math.inf, -math.inf, True, "1", None, Fraction(-1, 2)]
)
def test_mask_model_rejects_bad_scalars(scalar: object) -> None:
    with pytest.raises(ModelError):
        mask_model(SEED, [0.0], config=DEFAULT, scalar=scalar, path="pure")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "model"),
    [
        (DEFAULT, [0.0, math.nan]),
        (DEFAULT, [math.inf]),
        (DEFAULT, [1e39]),
        (DEFAULT, ["0.5"]),
        (DEFAULT, [True]),
        (DEFAULT, None),
        (DEFAULT, [[0.5]]),
        (pair("Prime", "I32", "B0", "M3"), [2**31]),
        (pair("Prime", "I32", "B0", "M3"), [0.5]),
        (pair("Prime", "I64", "B0", "M3"), [-(2**63) - 1]),
        (pair("Prime", "I64", "B0", "M3"), [False]),
    ],
)
@pytest.mark.parametrize("path", ["pure", pytest.param("numpy", marks=pytest.mark.numpy)])
def test_mask_model_rejects_bad_models(config: MaskConfigPair, model: Any, path: str) -> None:
    with pytest.raises(ModelError):
        mask_model(SEED, model, config=config, path=path)  # type: ignore[arg-type]


def test_numpy_path_rejects_incompatible_config() -> None:
    config = pair("Prime", "F64", "B0", "M3")
    assert not config.vect.numpy_compatible
    with pytest.raises(LocalProtocolError, match="2\\^63"):
        mask_model(SEED, [0.0], config=config, path="numpy")
    with pytest.raises(LocalProtocolError):
        derive_mask(SEED, config=config, length=1, path="numpy")
    assert masking.resolve_path("auto", config.vect) == "pure"


@pytest.mark.parametrize("path", ["fast", "", None, "NUMPY"])
def test_unknown_path(path: object) -> None:
    with pytest.raises(LocalProtocolError):
        mask_model(SEED, [0.0], config=DEFAULT, path=path)  # type: ignore[arg-type]


def test_resolve_path() -> None:
    assert masking.resolve_path("pure", DEFAULT.vect) == "pure"
    expected = "numpy" if masking.numpy_available() else "pure"
    assert masking.resolve_path("auto", DEFAULT.vect) == expected


def test_numpy_path_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # makes `import numpy` fail
    assert not masking.numpy_available()
    assert masking.resolve_path("auto", DEFAULT.vect) == "pure"
    with pytest.raises(LocalProtocolError, match="numpy"):
        mask_model(SEED, [0.0], config=DEFAULT, path="numpy")
    # auto still works, on the pure path.
    assert mask_model(SEED, [0.5], config=DEFAULT) == mask_model(
        SEED, [0.5], config=DEFAULT, path="pure"
    )


def test_check_model_length() -> None:
    masking.check_model_length([1, 2, 3], 3)
    with pytest.raises(ModelError):
        masking.check_model_length([1, 2], 3)
    with pytest.raises(ModelError):
        masking.check_model_length(5, 1)


# -- pure == numpy ------------------------------------------------------------------------------


def _edge_values(config: MaskConfig) -> list[Any]:
    b = bound(config)
    if config.data_type is DataType.F32:
        fb = float(b)
        return [
            0.0,
            -0.0,
            fb,
            -fb,
            math.nextafter(fb, math.inf),
            math.nextafter(fb, -math.inf),
            math.nextafter(-fb, math.inf),
            math.nextafter(-fb, -math.inf),
            fb * (1 + 2**-23),
            -fb * (1 - 2**-24),
            F32_TINY,
            -F32_TINY,
            1e-300,
            1e30,
            -3.4e38,
            0.1,
            -1 / 3,
            12345 / 10**10,
            -987654321 / 10**10,
        ]
    top = 2**31 - 1 if config.data_type is DataType.I32 else 2**63 - 1
    edges = [0, 1, -1, b, -b, b + 1, -b - 1, top, -top - 1, 2**53, 2**53 + 1, -(2**53) - 3]
    return [e for e in edges if -top - 1 <= e <= top]


@st.composite
def numpy_cases(draw: st.DrawFn) -> tuple[MaskConfigPair, list[Any], object, bytes]:
    vect = draw(st.sampled_from(NUMPY_CONFIGS))
    unit = draw(st.one_of(st.just(vect), st.sampled_from(ALL_CONFIGS)))
    length = draw(st.integers(min_value=1, max_value=200))
    if vect.data_type is DataType.F32:
        value = st.one_of(
            st.floats(width=32, allow_nan=False, allow_infinity=False),
            st.floats(min_value=-2.0 * bound(vect), max_value=2.0 * bound(vect)),
            st.integers(min_value=-(10**10), max_value=10**10).map(lambda k: k / 10**10),
            st.sampled_from(_edge_values(vect)),
        )
    else:
        top = 2**31 - 1 if vect.data_type is DataType.I32 else 2**63 - 1
        value = st.one_of(
            st.integers(min_value=-top - 1, max_value=top),
            st.integers(min_value=-3 * bound(vect), max_value=3 * bound(vect)),
            st.sampled_from(_edge_values(vect)),
        )
    model = draw(st.lists(value, min_size=length, max_size=length))
    scalar = draw(
        st.one_of(
            st.sampled_from([0, 1, 0.1, 137.0, 1e-300, 1 / 3, 2.0**-60, 3, 1e-10, 7.5e-11]),
            st.floats(min_value=0, max_value=1e6),
            st.fractions(min_value=0, max_value=100, max_denominator=1000),
            st.integers(min_value=0, max_value=10**4),
        )
    )
    seed = draw(st.binary(min_size=32, max_size=32))
    return MaskConfigPair(vect, unit), model, scalar, seed


@pytest.mark.numpy
@settings(deadline=None, max_examples=150)
@given(numpy_cases())
def test_mask_model_pure_equals_numpy(
    case: tuple[MaskConfigPair, list[Any], object, bytes],
) -> None:
    import numpy as np

    config, model, scalar, seed = case
    pure = mask_model(seed, model, config=config, scalar=scalar, path="pure")  # type: ignore[arg-type]
    fast = mask_model(seed, model, config=config, scalar=scalar, path="numpy")  # type: ignore[arg-type]
    assert pure.to_bytes() == fast.to_bytes()
    dtype = np.float64 if config.vect.data_type is DataType.F32 else np.int64
    array = np.array(model, dtype=dtype)
    for path in ("pure", "numpy"):
        from_array = mask_model(seed, array, config=config, scalar=scalar, path=path)  # type: ignore[arg-type]
        assert from_array.to_bytes() == pure.to_bytes()
    if config.vect.data_type is DataType.F32:
        as_f32 = mask_model(seed, array.astype(np.float32), config=config, scalar=scalar)  # type: ignore[arg-type]
        assert as_f32.to_bytes() == pure.to_bytes()
    assert derive_mask(seed, config=config, length=len(model), path="pure") == derive_mask(
        seed, config=config, length=len(model), path="numpy"
    )


@pytest.mark.numpy
@pytest.mark.parametrize("config", NUMPY_CONFIGS, ids=str)
def test_derive_mask_pure_equals_numpy(config: MaskConfig) -> None:
    p = MaskConfigPair.uniform(config)
    for length in (0, 1, 2, 3, 1000):
        pure = derive_mask(SEED, config=p, length=length, path="pure")
        fast = derive_mask(SEED, config=p, length=length, path="numpy")
        assert pure == fast
    unit, vector, _ = naive_mask(SEED, p, 1000)
    assert fast.vect.elements() == vector
    assert fast.unit.value == unit


# -- the numpy quantizer and converter on adversarial inputs -------------------------------------


def _compare_quantizers(values: list[Any], scalar: Fraction, config: MaskConfig) -> None:
    import numpy as np

    from xaynet.mask import _numpy

    dtype = np.float64 if config.data_type is DataType.F32 else np.int64
    array = np.array(values, dtype=dtype)
    s = clamped_scalar(scalar, config)
    fast = _numpy.quantize(array, s, config).tolist()
    exact = encoding.quantize(array.tolist(), s, config)
    mismatches = [(v, f, e) for v, f, e in zip(values, fast, exact, strict=True) if f != e]
    assert not mismatches, (str(config), s, mismatches[:5])


@pytest.mark.numpy
@pytest.mark.parametrize("config", [c for c in NUMPY_CONFIGS if c.group_type.value == 1], ids=str)
def test_numpy_quantizer_near_integer_products(config: MaskConfig) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    b, e = config.add_shift, config.exp_shift
    if config.data_type is DataType.F32:
        # w = k / 1e10 rounded: s*w*E within a rounding error of the integer k*s.
        ks = rng.integers(-b * e, b * e, 3000)
        base = (ks / 1e10).astype(np.float32).astype(np.float64).tolist()
        for s in (1.0, 0.1, 137.0, 1 / 3, 3.0, 0.7, 1e-300, 2.0**-20):
            _compare_quantizers(base, Fraction(s), config)
            if s < 1e-20:
                continue
            # w near (k + d) / (s E): products a hair away from an integer, both sides.
            near = ((ks + rng.choice([0.0, 1e-7, -1e-7, 0.5], ks.size)) / (s * 1e10)).astype(
                np.float32
            )
            _compare_quantizers(near.astype(np.float64).tolist(), Fraction(s), config)
    else:
        top = 2**31 - 1 if config.data_type is DataType.I32 else 2**63 - 1
        ints = rng.integers(-min(top, 2**40), min(top, 2**40), 3000).tolist()
        big = [2**53 + i for i in range(-50, 50)] + [top, -top - 1, top - 1]
        big = [v for v in big if -top - 1 <= v <= top]
        big += [-v for v in big if -v <= top]
        for s in (1.0, 1 / 3, 1e-10, 7.5e-11, 2.0**-40, 1e-15, 1e-300):
            _compare_quantizers(ints + big, Fraction(s), config)
    # Scalars that are not binary64 values, and huge ones (clamped by B_unit = B here).
    _compare_quantizers(_edge_values(config), Fraction(1, 3), config)
    _compare_quantizers(_edge_values(config), Fraction(10**6), config)


@pytest.mark.numpy
def test_numpy_quantizer_exact_near_integers_constructed() -> None:
    # s = j / 2^t with j chosen so that w * s * E = integer -+ 2^(10 - t): products within
    # 2^-45..2^-65 of an integer, far inside the numpy path's decision band.
    import random

    rng = random.Random(11)
    for name in ("I32", "I64", "F32"):
        for bound_name in ("B0", "B2", "B4"):
            config = MaskConfig.from_names("Prime", name, bound_name, "M3")
            for _ in range(150):
                t = rng.randint(55, 75)
                bits = 24 if name == "F32" else rng.randint(1, 31)
                w = rng.getrandbits(bits) | 1
                modulus = 2 ** (t - 10)
                j = (rng.choice([1, -1]) * pow(w * 5**10, -1, modulus)) % modulus % 2**53 or 1
                s = Fraction(j, 2**t)
                values: list[Any] = [w, -w] if name != "F32" else [float(w), -float(w)]
                _compare_quantizers(values, s, config)


@pytest.mark.numpy
def test_numpy_quantizer_huge_scalar_from_a_wide_unit() -> None:
    # A unit config with a huge bound lets s' reach 1e301: the float splitting overflows; the
    # results must still be exact, and no warning may escape (pytest turns them into errors).
    import numpy as np

    from xaynet.mask import _numpy

    config = MaskConfig.from_names("Prime", "F32", "B0", "M3")
    values = [0.0, -0.0, 1.0, -1.0, F32_TINY, -F32_TINY, 3e38]
    for s in (Fraction(1e301), Fraction(1.7e308), Fraction(10**300)):
        fast = _numpy.quantize(np.array(values), s, config).tolist()
        assert fast == encoding.quantize(values, s, config)


@pytest.mark.numpy
@pytest.mark.parametrize(
    ("data_type", "model"),
    [
        (DataType.I64, [2**53 + 1, 0.0]),  # np.asarray would round 2^53 + 1 to a float
        (DataType.I64, [2**63 - 1, -(2**63)]),
        (DataType.F32, [1, 0.5, 2**70]),
        (DataType.F32, [0.1, 1e-46, -1e-45]),
        (DataType.I32, [-(2**31), 2**31 - 1, 3.0]),
    ],
)
def test_numpy_conversion_matches_pure(data_type: DataType, model: list[Any]) -> None:
    import numpy as np

    from xaynet.mask import _numpy

    fast = _numpy.convert_model(model, data_type).tolist()
    assert fast == encoding.convert_model(model, data_type)
    if data_type is DataType.I64:
        assert (
            _numpy.convert_model(np.array(model[:1], dtype=object).astype(np.int64), data_type)[0]
            == model[0]
        )


@pytest.mark.numpy
@pytest.mark.parametrize(
    ("data_type", "model"),
    [
        (DataType.F32, [True, False]),
        (DataType.F32, [1.0, True]),
        (DataType.F32, [[1.0, 2.0]]),
        (DataType.F32, ["a"]),
        (DataType.F32, [1e39]),
        (DataType.F32, [math.nan]),
        (DataType.I64, [2**63]),
        (DataType.I64, [0.5]),
        (DataType.I64, [math.inf]),
        (DataType.I32, [2**31]),
        (DataType.I32, [True]),
    ],
)
@pytest.mark.parametrize("as_array", [False, True])
def test_numpy_conversion_rejects_like_pure(
    data_type: DataType, model: list[Any], as_array: bool
) -> None:
    import numpy as np

    from xaynet.mask import _numpy

    with pytest.raises(ModelError):
        encoding.convert_model(model, data_type)
    if as_array:
        try:
            array = np.asarray(model)
        except (ValueError, OverflowError):
            return
        if array.dtype.kind == "f" and any(isinstance(v, bool) for v in model):
            return  # numpy already made the bools floats: a float array is a valid model
        model = array  # type: ignore[assignment]
    with pytest.raises(ModelError):
        _numpy.convert_model(model, data_type)


@pytest.mark.numpy
@settings(deadline=None, max_examples=100)
@given(st.integers(min_value=6, max_value=8), st.data())
def test_numpy_element_codec(width: int, data: st.DataObject) -> None:
    import numpy as np

    from xaynet.mask import _lanes, _numpy

    top = (1 << (8 * width)) - 1
    values = data.draw(st.lists(st.integers(min_value=0, max_value=top), max_size=20))
    raw = _lanes.pack(values, width)
    decoded = _numpy.decode(raw, width)
    assert decoded.tolist() == values
    assert _numpy.encode(np.array(values, dtype=np.uint64), width) == raw


@pytest.mark.parametrize(
    "config",
    [
        MaskConfig.from_names("Power2", "F32", "B0", "M3"),
        MaskConfig.from_names("Prime", "F32", "B0", "M3"),
        MaskConfig.from_names("Power2", "I32", "B6", "M12"),
        MaskConfig.from_names("Prime", "F64", "Bmax", "M3"),
    ],
    ids=str,
)
def test_modular_addition_at_the_boundary(config: MaskConfig) -> None:
    # Sums of exactly q, q - 1, q + 1 and 2q - 2 (values and masks are both below q).
    from xaynet.mask import _lanes

    q, width = config.order, config.bytes_per_element
    values = [q - 5, q - 5, q - 5, q - 1, 0, 0]
    masks = [5, 4, 6, q - 1, 0, q - 1]
    data = masking._add_pure(values, _lanes.pack(masks, width), config)
    assert _lanes.unpack(data, width) == [(v + m) % q for v, m in zip(values, masks, strict=True)]
    assert _lanes.unpack(data, width)[:3] == [0, q - 1, 1]


@pytest.mark.numpy
@pytest.mark.parametrize("config", NUMPY_CONFIGS[::7], ids=str)
def test_numpy_modular_arithmetic_at_the_boundary(config: MaskConfig) -> None:
    import numpy as np

    from xaynet.mask import _numpy

    q = config.order
    a = [q - 5, q - 5, q - 5, q - 1, 0, 0, 3]
    b = [5, 4, 6, q - 1, 0, q - 1, 3]
    acc = np.array(a, dtype=np.uint64)
    _numpy.add_mod(acc, np.array(b, dtype=np.uint64), q)
    assert acc.tolist() == [(x + y) % q for x, y in zip(a, b, strict=True)]
    diff = _numpy.sub_mod(np.array(a, dtype=np.uint64), np.array(b, dtype=np.uint64), q)
    assert diff.tolist() == [(x - y) % q for x, y in zip(a, b, strict=True)]
