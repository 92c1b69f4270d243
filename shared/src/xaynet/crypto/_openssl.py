"""OpenSSL's ChaCha20 (via ``cryptography``) as a fast path for libsodium's deterministic PRG.

``randombytes_buf_deterministic(n, seed)`` is the ChaCha20-IETF keystream (RFC 8439) with
key = seed, nonce = ``b"LibsodiumDRG"`` and block counter 0. OpenSSL produces the same stream, and
unlike libsodium's one-shot call it can keep a cipher open and continue it, which is what
:class:`OpenSSLStream` is for. Tests check the bytes against libsodium's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import CipherContext

__all__ = ["OpenSSLStream", "available", "keystream"]

_NONCE = b"LibsodiumDRG"
# OpenSSL takes a 16-byte IV: the 32-bit little-endian initial block counter, then the nonce.
_IV = (0).to_bytes(4, "little") + _NONCE


def _encryptor(seed: bytes) -> CipherContext:
    return Cipher(algorithms.ChaCha20(seed, _IV), mode=None).encryptor()


def keystream(seed: bytes, length: int) -> bytes:
    """The first ``length`` bytes of the stream."""
    # Encrypting zeros yields the keystream. ``update(bytes(n))`` measured faster here than
    # ``update_into`` a preallocated ``bytearray``: the latter needs a final copy to ``bytes``.
    return _encryptor(seed).update(bytes(length))


class OpenSSLStream:
    """The same stream, read sequentially without regenerating what was already read."""

    __slots__ = ("_cipher",)

    def __init__(self, seed: bytes) -> None:
        self._cipher = _encryptor(seed)

    def read(self, n: int) -> bytes:
        return self._cipher.update(bytes(n))


def available() -> bool:
    """Whether this OpenSSL build offers ChaCha20 (FIPS-only builds do not)."""
    try:
        _encryptor(bytes(32))
    except UnsupportedAlgorithm:
        return False
    return True
