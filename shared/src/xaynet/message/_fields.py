"""Validation helpers shared by the frozen message dataclasses.

Constructors raise :class:`LocalProtocolError` (the caller built a bad value); decoders check the
same conditions first and raise :class:`DecodeError`, so a decoder never surfaces the former.
"""

from __future__ import annotations

from xaynet.errors import LocalProtocolError

__all__ = ["set_fixed_bytes", "set_bytes", "check_uint"]


def set_bytes(obj: object, name: str) -> bytes:
    """Normalise the bytes-like field ``name`` of the frozen dataclass ``obj`` to ``bytes``."""
    value = getattr(obj, name)
    if isinstance(value, bytearray | memoryview):
        value = bytes(value)
        object.__setattr__(obj, name, value)
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"{name} must be bytes, got {type(value).__name__}")
    return value


def set_fixed_bytes(obj: object, name: str, length: int) -> None:
    """Like :func:`set_bytes`, and require exactly ``length`` bytes."""
    value = set_bytes(obj, name)
    if len(value) != length:
        raise LocalProtocolError(f"{name} must be {length} bytes, got {len(value)}")


def check_uint(value: object, name: str, bits: int) -> None:
    """Require an ``int`` (not a ``bool``) in ``[0, 2**bits)``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < 1 << bits:
        raise LocalProtocolError(f"{name} must be in [0, 2^{bits}), got {value}")
