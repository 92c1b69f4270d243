"""Mask objects: masked models, masks and aggregates, with their wire encoding.

A :class:`MaskObject` is a vector of group elements (:class:`MaskVect`) plus one scalar element
(:class:`MaskUnit`). The same type carries a masked model, the mask derived from a seed, an
aggregate of either, and a summer's aggregated mask.

The vector keeps its elements in their wire encoding (``bytes_per_element`` little-endian bytes
each): decoding costs nothing until a path (pure Python or numpy) reads them in bulk.

Wire layout (integers in headers big-endian, elements little-endian)::

    MaskVect   = config (4) || count u32 BE || count * element (bpn bytes LE)
    MaskUnit   = config (4) || element (bpn bytes LE)
    MaskObject = MaskVect || MaskUnit
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from xaynet.errors import ConfigError, DecodeError
from xaynet.mask import _lanes
from xaynet.mask.config import MaskConfig, MaskConfigPair

__all__ = ["MaskVect", "MaskUnit", "MaskObject"]

_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class MaskVect:
    """A vector of elements of Z_q for ``config``, stored as ``count * bpn`` little-endian bytes."""

    config: MaskConfig
    # Megabytes for a real model: keep it out of reprs and log lines.
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.config, MaskConfig):
            raise ConfigError("MaskVect.config must be a MaskConfig")
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) % self.config.bytes_per_element:
            raise DecodeError(
                f"vector data of {len(self.data)} bytes is not a whole number of "
                f"{self.config.bytes_per_element}-byte elements"
            )
        if len(self.data) // self.config.bytes_per_element >= 2**32:
            raise DecodeError("a vector holds fewer than 2^32 elements")

    @classmethod
    def from_elements(cls, config: MaskConfig, elements: Sequence[int]) -> MaskVect:
        """Encode integers (each in ``[0, q)``) into a vector."""
        return cls(config, _lanes.pack(elements, config.bytes_per_element))

    def __len__(self) -> int:
        return len(self.data) // self.config.bytes_per_element

    def __repr__(self) -> str:
        return f"MaskVect(config={self.config}, length={len(self)})"

    def elements(self) -> list[int]:
        """The elements as Python integers."""
        return _lanes.unpack(self.data, self.config.bytes_per_element)

    @property
    def byte_length(self) -> int:
        return 8 + len(self.data)

    def to_bytes(self) -> bytes:
        return self.config.to_bytes() + _U32.pack(len(self)) + self.data

    @classmethod
    def decode(cls, buffer: bytes | memoryview, offset: int = 0) -> tuple[MaskVect, int]:
        """Parse a vector at ``offset``; return it and the offset just after it."""
        buffer = memoryview(buffer)
        if len(buffer) - offset < 8:
            raise DecodeError("truncated mask vector header")
        config = _config_at(buffer, offset)
        (count,) = _U32.unpack_from(buffer, offset + 4)
        end = offset + 8 + count * config.bytes_per_element
        if end > len(buffer):
            raise DecodeError(
                f"mask vector announces {count} elements but the buffer ends after "
                f"{(len(buffer) - offset - 8) // config.bytes_per_element}"
            )
        return cls(config, bytes(buffer[offset + 8 : end])), end


@dataclass(frozen=True, slots=True)
class MaskUnit:
    """One element of Z_q for ``config``: the (masked) scalar."""

    config: MaskConfig
    value: int

    def __post_init__(self) -> None:
        if not isinstance(self.config, MaskConfig):
            raise ConfigError("MaskUnit.config must be a MaskConfig")
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise DecodeError("a mask unit holds an integer")
        if not 0 <= self.value < 256**self.config.bytes_per_element:
            raise DecodeError("mask unit value does not fit its element size")

    @property
    def byte_length(self) -> int:
        return 4 + self.config.bytes_per_element

    def to_bytes(self) -> bytes:
        return self.config.to_bytes() + self.value.to_bytes(self.config.bytes_per_element, "little")

    @classmethod
    def decode(cls, buffer: bytes | memoryview, offset: int = 0) -> tuple[MaskUnit, int]:
        buffer = memoryview(buffer)
        if len(buffer) - offset < 4:
            raise DecodeError("truncated mask unit")
        config = _config_at(buffer, offset)
        end = offset + 4 + config.bytes_per_element
        if end > len(buffer):
            raise DecodeError("truncated mask unit element")
        return cls(config, int.from_bytes(buffer[offset + 4 : end], "little")), end


@dataclass(frozen=True, slots=True)
class MaskObject:
    """A masked model, a mask, or an aggregate of either: a vector and a unit element."""

    vect: MaskVect
    unit: MaskUnit

    def __post_init__(self) -> None:
        if not isinstance(self.vect, MaskVect) or not isinstance(self.unit, MaskUnit):
            raise DecodeError("a MaskObject holds a MaskVect and a MaskUnit")

    @property
    def config(self) -> MaskConfigPair:
        return MaskConfigPair(self.vect.config, self.unit.config)

    def __len__(self) -> int:
        return len(self.vect)

    @property
    def byte_length(self) -> int:
        return self.vect.byte_length + self.unit.byte_length

    def to_bytes(self) -> bytes:
        return self.vect.to_bytes() + self.unit.to_bytes()

    @classmethod
    def decode(cls, buffer: bytes | memoryview, offset: int = 0) -> tuple[MaskObject, int]:
        """Parse an object at ``offset``; return it and the offset just after it."""
        vect, offset = MaskVect.decode(buffer, offset)
        unit, offset = MaskUnit.decode(buffer, offset)
        return cls(vect, unit), offset

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> MaskObject:
        """Parse exactly one object; trailing bytes are an error."""
        obj, end = cls.decode(data)
        if end != len(data):
            raise DecodeError(f"{len(data) - end} trailing bytes after the mask object")
        return obj


def _config_at(buffer: memoryview, offset: int) -> MaskConfig:
    try:
        return MaskConfig.from_bytes(bytes(buffer[offset : offset + 4]))
    except ConfigError as exc:
        raise DecodeError(f"invalid mask config: {exc}") from None
