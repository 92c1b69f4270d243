"""Mask configurations: the derived constants against the specification (section 2.2)."""

from __future__ import annotations

import itertools
import math

import pytest

from xaynet.errors import ConfigError
from xaynet.mask import BoundType, DataType, GroupType, MaskConfig, MaskConfigPair, ModelType
from xaynet.mask import config as config_module

from .support import ALL_CONFIGS, MAX_MODELS, bound, exp_shift, integer_order

# The bytes-per-element table of spec section 2.2, row by row, columns M3, M6, M9, M12.
SPEC_BYTES: dict[tuple[str, str], tuple[int, int, int, int]] = {}
for data in ("F32", "I32", "I64"):
    SPEC_BYTES[data, "B0"] = (6, 7, 9, 10)
    SPEC_BYTES[data, "B2"] = (7, 8, 9, 11)
    SPEC_BYTES[data, "B4"] = (8, 9, 10, 11)
    SPEC_BYTES[data, "B6"] = (9, 10, 11, 12)
SPEC_BYTES.update(
    {
        ("F32", "Bmax"): (37, 38, 39, 40),
        ("F64", "B0"): (10, 11, 13, 14),
        ("F64", "B2"): (11, 12, 13, 15),
        ("F64", "B4"): (12, 13, 14, 16),
        ("F64", "B6"): (13, 14, 15, 16),
        ("F64", "Bmax"): (264, 266, 267, 268),
        ("I32", "Bmax"): (10, 11, 12, 14),
        ("I64", "Bmax"): (14, 15, 16, 18),
    }
)
MODEL_NAMES = ("M3", "M6", "M9", "M12")
GROUP_NAMES = ("Integer", "Prime", "Power2")
FLOAT_BMAX = {(DataType.F32, BoundType.BMAX), (DataType.F64, BoundType.BMAX)}


def test_spec_table_covers_every_row() -> None:
    assert len(SPEC_BYTES) == 20


def test_default_config() -> None:
    config = MaskConfig.from_names("Prime", "F32", "B0", "M3")
    assert config.order == 20_000_000_000_021
    assert config.bytes_per_element == 6
    assert config.add_shift == 1
    assert config.exp_shift == 10**10
    assert config.max_models == 1000
    assert config.max_element == 2 * 10**10
    assert str(config) == "Prime/F32/B0/M3"


def test_default_integer_and_power2_orders() -> None:
    assert MaskConfig.from_names("Integer", "F32", "B0", "M3").order == 2 * 10**13 + 1
    power2 = MaskConfig.from_names("Power2", "F32", "B0", "M3")
    assert power2.order == 2**45
    assert power2.bytes_per_element == 6


def test_derived_shifts() -> None:
    for config in ALL_CONFIGS:
        assert config.add_shift == bound(config), config
        assert config.exp_shift == exp_shift(config), config
        assert config.max_models == MAX_MODELS[config.model_type], config
        assert config.max_element == 2 * bound(config) * exp_shift(config), config


@pytest.mark.parametrize("group", GROUP_NAMES)
@pytest.mark.parametrize(("data", "bound_name"), sorted(SPEC_BYTES))
def test_bytes_per_element_matches_spec_table(group: str, data: str, bound_name: str) -> None:
    for model, expected in zip(MODEL_NAMES, SPEC_BYTES[data, bound_name], strict=True):
        config = MaskConfig.from_names(group, data, bound_name, model)
        assert config.bytes_per_element == expected, config
        assert config.bytes_per_element == math.ceil((config.order - 1).bit_length() / 8)
        assert config.bits == (config.order - 1).bit_length()


@pytest.mark.parametrize("config", [c for c in ALL_CONFIGS if c.group_type is GroupType.INTEGER])
def test_integer_order_rule(config: MaskConfig) -> None:
    # q = Nmax * 2B * E + 1, with B and E restated from the spec (R = 2B exactly in every row).
    assert config.order == integer_order(config)
    assert config.order == config.max_models * config.max_element + 1


@pytest.mark.parametrize("config", [c for c in ALL_CONFIGS if c.group_type is GroupType.POWER2])
def test_power2_order_rule(config: MaskConfig) -> None:
    q, base = config.order, integer_order(config)
    assert q & (q - 1) == 0
    assert q >= base > q // 2


# -- Prime orders --------------------------------------------------------------------------------


def _small_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\0\0"
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return [p for p in range(limit + 1) if sieve[p]]


_SIEVE_PRIMES = _small_primes(100_000)


def _miller_rabin(n: int, bases: list[int]) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _check_next_prime(start: int, offset: int) -> None:
    """start + offset is prime and every number in [start, start + offset) is composite.

    Independent of the module: sieve the interval with small primes, prove each survivor
    composite by a failed Fermat test, and test the end point with Miller-Rabin (bases 2..37 are
    a proof below 3.3e24; above, 12 bases leave a chance below 4^-12 of a composite passing).
    """
    end = start + offset
    composite = bytearray(offset + 1)
    for p in _SIEVE_PRIMES:
        if p * p > end:
            break
        first = (-start) % p
        for i in range(first, offset + 1, p):
            if start + i != p:
                composite[i] = 1
    assert not composite[offset], f"{end} has a small factor"
    for i in range(offset):
        if not composite[i]:
            n = start + i
            assert n > 1
            assert pow(2, n - 1, n) != 1, f"{n} between the Integer and the Prime order is prime"
    assert _miller_rabin(end, _SIEVE_PRIMES[:12])


def _prime_key_configs(slow: bool) -> list[MaskConfig]:
    return [
        c
        for c in ALL_CONFIGS
        if c.group_type is GroupType.PRIME and ((c.data_type, c.bound_type) in FLOAT_BMAX) == slow
    ]


def test_prime_offset_table_is_complete() -> None:
    keys = set(itertools.product(DataType, BoundType, ModelType))
    assert set(config_module._PRIME_OFFSETS) == keys


@pytest.mark.parametrize("config", _prime_key_configs(slow=False), ids=str)
def test_prime_offsets(config: MaskConfig) -> None:
    base = integer_order(config)
    offset = config_module._PRIME_OFFSETS[config.data_type, config.bound_type, config.model_type]
    assert config.order == base + offset
    assert config_module._next_prime(base) - base == offset
    _check_next_prime(base, offset)


@pytest.mark.slow
@pytest.mark.parametrize("config", _prime_key_configs(slow=True), ids=str)
def test_prime_offsets_float_bmax(config: MaskConfig) -> None:
    base = integer_order(config)
    offset = config_module._PRIME_OFFSETS[config.data_type, config.bound_type, config.model_type]
    assert config.order == base + offset
    # Equivalent to offset == _next_prime(base) - base, checked independently of the module.
    _check_next_prime(base, offset)


@pytest.mark.parametrize(("n", "expected"), [(0, 2), (2, 2), (3, 3), (4, 5), (24, 29), (90, 97)])
def test_next_prime_small(n: int, expected: int) -> None:
    assert config_module._next_prime(n) == expected


def test_is_probable_prime_rejects_strong_pseudoprimes() -> None:
    # 3215031751 is a strong pseudoprime to bases 2, 3, 5 and 7; a Carmichael number too.
    assert not config_module._is_probable_prime(3_215_031_751)
    assert not config_module._is_probable_prime(561)
    assert config_module._is_probable_prime(2**61 - 1)
    assert not config_module._is_probable_prime(1)


def test_numpy_compatible_configs() -> None:
    expected = {
        (g, d, b, m)
        for g in GroupType
        for d in (DataType.F32, DataType.I32, DataType.I64)
        for b, m in (
            (BoundType.B0, ModelType.M3),
            (BoundType.B0, ModelType.M6),
            (BoundType.B2, ModelType.M3),
            (BoundType.B2, ModelType.M6),
            (BoundType.B4, ModelType.M3),
        )
    }
    compatible = {
        (c.group_type, c.data_type, c.bound_type, c.model_type)
        for c in ALL_CONFIGS
        if c.numpy_compatible
    }
    assert compatible == expected
    assert all(c.numpy_compatible == (c.order < 2**63) for c in ALL_CONFIGS)


# -- names and bytes -----------------------------------------------------------------------------


def test_names_and_bytes_round_trip() -> None:
    for config in ALL_CONFIGS:
        names = config.names()
        assert set(names) == {"group_type", "data_type", "bound_type", "model_type"}
        rebuilt = MaskConfig.from_names(
            names["group_type"], names["data_type"], names["bound_type"], names["model_type"]
        )
        assert rebuilt == config
        assert str(config) == "/".join(names.values())
        raw = config.to_bytes()
        assert raw == bytes(
            [config.group_type, config.data_type, config.bound_type, config.model_type]
        )
        assert MaskConfig.from_bytes(raw) == config


def test_all_configs_distinct() -> None:
    assert len({c.to_bytes() for c in ALL_CONFIGS}) == 240
    assert len({str(c) for c in ALL_CONFIGS}) == 240


def test_wire_codes() -> None:
    config = MaskConfig.from_names("Power2", "I64", "Bmax", "M12")
    assert config.to_bytes() == bytes([2, 3, 255, 12])
    assert MaskConfig.from_names("Integer", "F64", "B6", "M9").to_bytes() == bytes([0, 1, 6, 9])


def test_names_are_case_insensitive_and_accept_members() -> None:
    assert MaskConfig.from_names("prime", "f32", "bMAX", "m6") == MaskConfig(
        GroupType.PRIME, DataType.F32, BoundType.BMAX, ModelType.M6
    )
    assert MaskConfig.from_names(
        GroupType.POWER2, DataType.I32, BoundType.B4, ModelType.M9
    ) == MaskConfig.from_names("Power2", "I32", "B4", "M9")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("Prim", "F32", "B0", "M3"), "group_type"),
        (("Prime", "F16", "B0", "M3"), "data_type"),
        (("Prime", "F32", "B1", "M3"), "bound_type"),
        (("Prime", "F32", "B0", "M4"), "model_type"),
        (("Prime", "F32", "B0", 3), "model_type"),
        ((1, "F32", "B0", "M3"), "group_type"),
        (("Prime", DataType.F32, BoundType.B0, DataType.F32), "model_type"),
        (("Prime", "F32", "", "M3"), "bound_type"),
    ],
)
def test_unknown_names(args: tuple[object, ...], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        MaskConfig.from_names(*args)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (bytes([3, 0, 0, 3]), "group type"),
        (bytes([1, 4, 0, 3]), "data type"),
        (bytes([1, 0, 1, 3]), "bound type"),
        (bytes([1, 0, 254, 3]), "bound type"),
        (bytes([1, 0, 0, 4]), "model type"),
        (bytes([1, 0, 0, 0]), "model type"),
    ],
)
def test_unknown_codes(raw: bytes, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        MaskConfig.from_bytes(raw)


@pytest.mark.parametrize("raw", [b"", b"\x01\x00\x00", b"\x01\x00\x00\x03\x00"])
def test_config_bytes_length(raw: bytes) -> None:
    with pytest.raises(ConfigError):
        MaskConfig.from_bytes(raw)


@pytest.mark.parametrize(
    "fields",
    [
        (1, DataType.F32, BoundType.B0, ModelType.M3),
        (GroupType.PRIME, 0, BoundType.B0, ModelType.M3),
        (GroupType.PRIME, DataType.F32, "B0", ModelType.M3),
        (GroupType.PRIME, DataType.F32, BoundType.B0, None),
        # An IntEnum member of the wrong enum, even with a valid value.
        (GroupType.PRIME, GroupType.PRIME, BoundType.B0, ModelType.M3),
        (GroupType.PRIME, DataType.F32, BoundType.B0, BoundType.B6),
    ],
)
def test_mask_config_rejects_non_enum_fields(fields: tuple[object, ...]) -> None:
    with pytest.raises(ConfigError):
        MaskConfig(*fields)  # type: ignore[arg-type]


def test_config_pair() -> None:
    vect = MaskConfig.from_names("Prime", "F32", "B0", "M6")
    unit = MaskConfig.from_names("Prime", "F32", "B2", "M3")
    pair = MaskConfigPair(vect, unit)
    assert pair.max_models == 1000
    assert MaskConfigPair(unit, vect).max_models == 1000
    assert MaskConfigPair.uniform(vect) == MaskConfigPair(vect, vect)
    assert MaskConfigPair.uniform(vect).max_models == 10**6
    with pytest.raises(ConfigError):
        MaskConfigPair(vect, "Prime/F32/B0/M3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        MaskConfigPair(None, unit)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    config = MaskConfig.from_names("Prime", "F32", "B0", "M3")
    with pytest.raises(AttributeError):
        config.group_type = GroupType.POWER2  # type: ignore[misc]
