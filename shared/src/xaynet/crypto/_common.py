"""Sizes, the argument error and the input checks shared by the crypto modules."""

from __future__ import annotations

from xaynet.errors import LocalProtocolError

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SIGNING_SECRET_KEY_BYTES",
    "ENCRYPT_SECRET_KEY_BYTES",
    "SIGNATURE_BYTES",
    "SEED_BYTES",
    "SEALED_BOX_OVERHEAD",
    "SHA256_BYTES",
    "PRG_MAX_BYTES",
    "CryptoArgumentError",
    "as_bytes",
    "as_sized",
    "as_length",
]

PUBLIC_KEY_BYTES = 32
SIGNING_SECRET_KEY_BYTES = 64
ENCRYPT_SECRET_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
#: 32-byte ephemeral public key + 16-byte Poly1305 tag.
SEALED_BOX_OVERHEAD = 48
SHA256_BYTES = 32
#: libsodium aborts the whole process (``sodium_misuse``) above 2^38 bytes of deterministic
#: random output, so longer requests are refused here with an exception instead.
PRG_MAX_BYTES = 1 << 38


class CryptoArgumentError(LocalProtocolError, ValueError):
    """A crypto function was called with an argument of the wrong type, length or range."""


def as_bytes(name: str, value: object) -> bytes:
    """``value`` as ``bytes`` if it is bytes-like; anything else is a caller bug.

    ``bytes(5)`` would silently give five zero bytes and ``bytes("ab")`` fails with a bare
    ``TypeError``, hence the explicit type check before converting.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise CryptoArgumentError(f"{name}: expected bytes-like, got {type(value).__name__}")


def as_sized(name: str, value: object, size: int) -> bytes:
    """``value`` as ``bytes`` of exactly ``size`` bytes."""
    data = as_bytes(name, value)
    if len(data) != size:
        raise CryptoArgumentError(f"{name}: expected {size} bytes, got {len(data)}")
    return data


def as_length(name: str, value: object) -> int:
    """A byte count in ``[0, PRG_MAX_BYTES]`` (``bool`` is refused: it is never meant as a size)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise CryptoArgumentError(f"{name}: expected int, got {type(value).__name__}")
    if not 0 <= value <= PRG_MAX_BYTES:
        raise CryptoArgumentError(f"{name}: must be in [0, 2**38], got {value}")
    return value
