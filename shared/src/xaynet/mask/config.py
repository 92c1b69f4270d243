"""Masking configurations and the constants derived from them.

A :class:`MaskConfig` names a finite group Z_q and a fixed-point encoding of model values into it.
Four enumerated fields span the whole configuration space of the original system:

* group type -- how the order q is chosen above the largest possible sum (Integer, Prime, Power2);
* data type -- the value type of the model (F32, F64, I32, I64);
* bound type -- the absolute bound B of the (scaled) values, beyond which they are clamped;
* model type -- the maximum number of models Nmax that can be aggregated without wrap-around.

Derived: add-shift B, exp-shift E = 10^e (the fixed-point resolution is 1/E), Nmax, the group
order q and the bytes per serialised element. A :class:`MaskConfigPair` holds one config for the
model vector and one for the scalar ("unit") element that carries the aggregation weight.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from xaynet.errors import ConfigError

__all__ = [
    "GroupType",
    "DataType",
    "BoundType",
    "ModelType",
    "MaskConfig",
    "MaskConfigPair",
    "F32_MAX",
    "F64_MAX",
    "DEFAULT_MASK_CONFIG",
]

#: The largest finite IEEE binary32 value, as an exact integer.
F32_MAX = (2**24 - 1) * 2**104
#: The largest finite IEEE binary64 value, as an exact integer.
F64_MAX = (2**53 - 1) * 2**971


class GroupType(enum.IntEnum):
    """How the group order is chosen above the largest possible aggregate."""

    #: q = Nmax * 2B * E + 1: no gap between the largest sum and q.
    INTEGER = 0
    #: the smallest prime >= the Integer order.
    PRIME = 1
    #: the smallest power of two >= the Integer order: reduction is a bit mask.
    POWER2 = 2


class DataType(enum.IntEnum):
    """The value type of the model."""

    F32 = 0
    F64 = 1
    I32 = 2
    I64 = 3


class BoundType(enum.IntEnum):
    """Absolute bound of the scaled model values. The value is the byte code on the wire."""

    B0 = 0  #: |x| <= 1
    B2 = 2  #: |x| <= 100
    B4 = 4  #: |x| <= 10_000
    B6 = 6  #: |x| <= 1_000_000
    BMAX = 255  #: |x| <= the largest value of the data type


class ModelType(enum.IntEnum):
    """Maximum number of aggregated models, 10^value. The value is the byte code on the wire."""

    M3 = 3
    M6 = 6
    M9 = 9
    M12 = 12


_NAMES: dict[type[enum.IntEnum], dict[str, enum.IntEnum]] = {
    GroupType: {"Integer": GroupType.INTEGER, "Prime": GroupType.PRIME, "Power2": GroupType.POWER2},
    DataType: {m.name: m for m in DataType},
    BoundType: {
        "B0": BoundType.B0,
        "B2": BoundType.B2,
        "B4": BoundType.B4,
        "B6": BoundType.B6,
        "Bmax": BoundType.BMAX,
    },
    ModelType: {m.name: m for m in ModelType},
}


def _display_name(member: enum.IntEnum) -> str:
    for name, value in _NAMES[type(member)].items():
        if value is member:
            return name
    raise AssertionError(member)  # pragma: no cover - every member has a name


def _parse(kind: type[enum.IntEnum], value: object, field: str) -> enum.IntEnum:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        table = _NAMES[kind]
        for name, member in table.items():
            if value.lower() == name.lower():
                return member
        raise ConfigError(f"{field}: unknown name {value!r}; expected one of {', '.join(table)}")
    raise ConfigError(f"{field}: expected a name, got {type(value).__name__}")


# Small primes for trial division before Miller-Rabin.
_SMALL_PRIMES: tuple[int, ...] = tuple(
    p for p in range(2, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))
)


def _is_probable_prime(n: int) -> bool:
    """Miller-Rabin with the first 40 primes as fixed bases.

    Deterministic (the same answer everywhere). Provably exact below 3.3 * 10^24, which covers
    every order below 2^63; above that the chance of a composite passing is below 4^-40.
    """
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in _SMALL_PRIMES[:40]:
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


@functools.cache
def _next_prime(n: int) -> int:
    """The smallest prime >= n."""
    candidate = n if n % 2 else n + 1
    if n <= 2:
        return 2
    while not _is_probable_prime(candidate):
        candidate += 2
    return candidate


@dataclass(frozen=True, slots=True)
class MaskConfig:
    """One masking configuration: group, data, bound and model type."""

    group_type: GroupType
    data_type: DataType
    bound_type: BoundType
    model_type: ModelType

    def __post_init__(self) -> None:
        for field, kind in (
            ("group_type", GroupType),
            ("data_type", DataType),
            ("bound_type", BoundType),
            ("model_type", ModelType),
        ):
            value = getattr(self, field)
            if type(value) is not kind:
                raise ConfigError(f"{field}: expected {kind.__name__}, got {value!r}")

    @classmethod
    def from_names(cls, group: object, data: object, bound: object, model: object) -> MaskConfig:
        """Build a config from names as written in TOML (``"Prime"``, ``"F32"``, ``"B0"``, ...)."""
        return cls(
            GroupType(_parse(GroupType, group, "group_type")),
            DataType(_parse(DataType, data, "data_type")),
            BoundType(_parse(BoundType, bound, "bound_type")),
            ModelType(_parse(ModelType, model, "model_type")),
        )

    def names(self) -> dict[str, str]:
        """The config as names, the inverse of :meth:`from_names`."""
        return {
            "group_type": _display_name(self.group_type),
            "data_type": _display_name(self.data_type),
            "bound_type": _display_name(self.bound_type),
            "model_type": _display_name(self.model_type),
        }

    # -- wire encoding -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The 4-byte wire form: group, data, bound and model byte codes."""
        return bytes(
            (
                self.group_type.value,
                self.data_type.value,
                self.bound_type.value,
                self.model_type.value,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> MaskConfig:
        """Parse the 4-byte wire form. Raises :class:`ConfigError` for an unknown code."""
        if len(data) != 4:
            raise ConfigError(f"a mask config is 4 bytes, got {len(data)}")
        fields = (
            ("group type", GroupType),
            ("data type", DataType),
            ("bound type", BoundType),
            ("model type", ModelType),
        )
        try:
            return cls(
                GroupType(data[0]), DataType(data[1]), BoundType(data[2]), ModelType(data[3])
            )
        except ValueError:
            for (label, kind), code in zip(fields, data, strict=True):
                if code not in kind._value2member_map_:
                    raise ConfigError(f"unknown {label} code {code}") from None
            raise

    # -- derived constants ---------------------------------------------------------------------

    @property
    def add_shift(self) -> int:
        """B: the absolute bound of values; values are shifted by B to be non-negative."""
        if self.bound_type is not BoundType.BMAX:
            return int(10 ** int(self.bound_type.value))
        return {
            DataType.F32: F32_MAX,
            DataType.F64: F64_MAX,
            DataType.I32: 2**31,
            DataType.I64: 2**63,
        }[self.data_type]

    @property
    def exp_shift(self) -> int:
        """E = 10^e: values are fixed-point numbers with resolution 1/E."""
        bounded = self.bound_type is not BoundType.BMAX
        if self.data_type is DataType.F32:
            return 10**10 if bounded else 10**45
        if self.data_type is DataType.F64:
            return 10**20 if bounded else 10**324
        return 10**10

    @property
    def max_models(self) -> int:
        """Nmax: how many objects can be aggregated without the sum wrapping around q."""
        return 10**self.model_type.value

    @property
    def max_element(self) -> int:
        """The largest encoded value of one model: 2 * B * E."""
        return 2 * self.add_shift * self.exp_shift

    @property
    def order(self) -> int:
        """q, the order of the group Z_q in which masked values live."""
        return _order(self)

    @property
    def bits(self) -> int:
        """The bit length of the largest element, q - 1."""
        return (self.order - 1).bit_length()

    @property
    def bytes_per_element(self) -> int:
        """Bytes of one serialised element: ceil(bitlen(q - 1) / 8)."""
        return (self.bits + 7) // 8

    @property
    def numpy_compatible(self) -> bool:
        """Whether the numpy fast path (uint64 lanes) can serve this config: q < 2^63."""
        return self.order < 2**63

    def __str__(self) -> str:
        n = self.names()
        return f"{n['group_type']}/{n['data_type']}/{n['bound_type']}/{n['model_type']}"


# Prime orders as offsets above the Integer order: _next_prime() gives the same values (a test
# recomputes every row), but the float-Bmax rows take seconds to search, so they are cached here.
_PRIME_OFFSETS: dict[tuple[DataType, BoundType, ModelType], int] = {
    (DataType.F32, BoundType.B0, ModelType.M3): 20,
    (DataType.F32, BoundType.B0, ModelType.M6): 2,
    (DataType.F32, BoundType.B0, ModelType.M9): 10,
    (DataType.F32, BoundType.B0, ModelType.M12): 2,
    (DataType.F32, BoundType.B2, ModelType.M3): 20,
    (DataType.F32, BoundType.B2, ModelType.M6): 56,
    (DataType.F32, BoundType.B2, ModelType.M9): 68,
    (DataType.F32, BoundType.B2, ModelType.M12): 2,
    (DataType.F32, BoundType.B4, ModelType.M3): 2,
    (DataType.F32, BoundType.B4, ModelType.M6): 88,
    (DataType.F32, BoundType.B4, ModelType.M9): 68,
    (DataType.F32, BoundType.B4, ModelType.M12): 26,
    (DataType.F32, BoundType.B6, ModelType.M3): 10,
    (DataType.F32, BoundType.B6, ModelType.M6): 2,
    (DataType.F32, BoundType.B6, ModelType.M9): 8,
    (DataType.F32, BoundType.B6, ModelType.M12): 130,
    (DataType.F32, BoundType.BMAX, ModelType.M3): 178,
    (DataType.F32, BoundType.BMAX, ModelType.M6): 52,
    (DataType.F32, BoundType.BMAX, ModelType.M9): 180,
    (DataType.F32, BoundType.BMAX, ModelType.M12): 148,
    (DataType.F64, BoundType.B0, ModelType.M3): 68,
    (DataType.F64, BoundType.B0, ModelType.M6): 26,
    (DataType.F64, BoundType.B0, ModelType.M9): 16,
    (DataType.F64, BoundType.B0, ModelType.M12): 158,
    (DataType.F64, BoundType.B2, ModelType.M3): 8,
    (DataType.F64, BoundType.B2, ModelType.M6): 130,
    (DataType.F64, BoundType.B2, ModelType.M9): 46,
    (DataType.F64, BoundType.B2, ModelType.M12): 202,
    (DataType.F64, BoundType.B4, ModelType.M3): 38,
    (DataType.F64, BoundType.B4, ModelType.M6): 70,
    (DataType.F64, BoundType.B4, ModelType.M9): 16,
    (DataType.F64, BoundType.B4, ModelType.M12): 40,
    (DataType.F64, BoundType.B6, ModelType.M3): 16,
    (DataType.F64, BoundType.B6, ModelType.M6): 158,
    (DataType.F64, BoundType.B6, ModelType.M9): 2,
    (DataType.F64, BoundType.B6, ModelType.M12): 22,
    (DataType.F64, BoundType.BMAX, ModelType.M3): 728,
    (DataType.F64, BoundType.BMAX, ModelType.M6): 1128,
    (DataType.F64, BoundType.BMAX, ModelType.M9): 242,
    (DataType.F64, BoundType.BMAX, ModelType.M12): 1752,
    (DataType.I32, BoundType.B0, ModelType.M3): 20,
    (DataType.I32, BoundType.B0, ModelType.M6): 2,
    (DataType.I32, BoundType.B0, ModelType.M9): 10,
    (DataType.I32, BoundType.B0, ModelType.M12): 2,
    (DataType.I32, BoundType.B2, ModelType.M3): 20,
    (DataType.I32, BoundType.B2, ModelType.M6): 56,
    (DataType.I32, BoundType.B2, ModelType.M9): 68,
    (DataType.I32, BoundType.B2, ModelType.M12): 2,
    (DataType.I32, BoundType.B4, ModelType.M3): 2,
    (DataType.I32, BoundType.B4, ModelType.M6): 88,
    (DataType.I32, BoundType.B4, ModelType.M9): 68,
    (DataType.I32, BoundType.B4, ModelType.M12): 26,
    (DataType.I32, BoundType.B6, ModelType.M3): 10,
    (DataType.I32, BoundType.B6, ModelType.M6): 2,
    (DataType.I32, BoundType.B6, ModelType.M9): 8,
    (DataType.I32, BoundType.B6, ModelType.M12): 130,
    (DataType.I32, BoundType.BMAX, ModelType.M3): 38,
    (DataType.I32, BoundType.BMAX, ModelType.M6): 170,
    (DataType.I32, BoundType.BMAX, ModelType.M9): 66,
    (DataType.I32, BoundType.BMAX, ModelType.M12): 150,
    (DataType.I64, BoundType.B0, ModelType.M3): 20,
    (DataType.I64, BoundType.B0, ModelType.M6): 2,
    (DataType.I64, BoundType.B0, ModelType.M9): 10,
    (DataType.I64, BoundType.B0, ModelType.M12): 2,
    (DataType.I64, BoundType.B2, ModelType.M3): 20,
    (DataType.I64, BoundType.B2, ModelType.M6): 56,
    (DataType.I64, BoundType.B2, ModelType.M9): 68,
    (DataType.I64, BoundType.B2, ModelType.M12): 2,
    (DataType.I64, BoundType.B4, ModelType.M3): 2,
    (DataType.I64, BoundType.B4, ModelType.M6): 88,
    (DataType.I64, BoundType.B4, ModelType.M9): 68,
    (DataType.I64, BoundType.B4, ModelType.M12): 26,
    (DataType.I64, BoundType.B6, ModelType.M3): 10,
    (DataType.I64, BoundType.B6, ModelType.M6): 2,
    (DataType.I64, BoundType.B6, ModelType.M9): 8,
    (DataType.I64, BoundType.B6, ModelType.M12): 130,
    (DataType.I64, BoundType.BMAX, ModelType.M3): 50,
    (DataType.I64, BoundType.BMAX, ModelType.M6): 272,
    (DataType.I64, BoundType.BMAX, ModelType.M9): 50,
    (DataType.I64, BoundType.BMAX, ModelType.M12): 102,
}


@functools.cache
def _order(config: MaskConfig) -> int:
    integer_order = config.max_models * config.max_element + 1
    if config.group_type is GroupType.INTEGER:
        return integer_order
    if config.group_type is GroupType.PRIME:
        key = (config.data_type, config.bound_type, config.model_type)
        return integer_order + _PRIME_OFFSETS[key]
    return 1 << (integer_order - 1).bit_length()


@dataclass(frozen=True, slots=True)
class MaskConfigPair:
    """The config of the model vector and the config of the scalar (unit) element."""

    vect: MaskConfig
    unit: MaskConfig

    def __post_init__(self) -> None:
        if not isinstance(self.vect, MaskConfig) or not isinstance(self.unit, MaskConfig):
            raise ConfigError("a MaskConfigPair holds two MaskConfig objects")

    @property
    def max_models(self) -> int:
        """How many objects both halves can aggregate."""
        return min(self.vect.max_models, self.unit.max_models)

    @classmethod
    def uniform(cls, config: MaskConfig) -> MaskConfigPair:
        """The same config for vector and unit, as the original coordinator did."""
        return cls(config, config)


#: The shipped default: Power2 groups, because their masks need no rejection sampling (every
#: draw is accepted, and in the pure path the keystream bytes are the elements) and reduction
#: modulo q is a bit mask; a one-time pad hides a value equally well in any group. B2 lets model
#: values reach +-100, which real weights need more often than B0's +-1, for one more byte per
#: element. The scalar is a normalised weight in [0, 1] (B0).
DEFAULT_MASK_CONFIG = MaskConfigPair(
    vect=MaskConfig(GroupType.POWER2, DataType.F32, BoundType.B2, ModelType.M3),
    unit=MaskConfig(GroupType.POWER2, DataType.F32, BoundType.B0, ModelType.M3),
)
