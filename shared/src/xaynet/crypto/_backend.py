"""The interface every libsodium binding implements, and the choice of one per runtime.

Backends are thin: they take and return ``bytes`` of the right lengths (the facade checks inputs
first) and keep libsodium's exact formats, so a key or box made by one opens with another.
"""

from __future__ import annotations

import sys
from typing import Protocol

from xaynet.errors import CryptoUnavailableError

__all__ = ["CryptoBackend", "get_backend", "set_backend"]


class CryptoBackend(Protocol):
    """The libsodium operations the protocol needs."""

    @property
    def name(self) -> str:
        """A short label for logs and test ids (``"pynacl"``, ``"libsodium.js"``)."""
        ...

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        """``crypto_sign_seed_keypair``: (32-byte public key, 64-byte secret key)."""
        ...

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        """``crypto_sign_detached``: the 64-byte Ed25519 signature."""
        ...

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> bool:
        """``crypto_sign_verify_detached``: ``False`` for any signature that does not verify."""
        ...

    def box_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        """``crypto_box_seed_keypair``: (32-byte public key, 32-byte secret key)."""
        ...

    def box_seal(self, message: bytes, public_key: bytes) -> bytes:
        """``crypto_box_seal`` (the ephemeral key comes from libsodium's own randomness)."""
        ...

    def box_seal_open(
        self, ciphertext: bytes, public_key: bytes, secret_key: bytes
    ) -> bytes | None:
        """``crypto_box_seal_open``: the plaintext, or ``None`` if the box does not open."""
        ...

    def prg(self, seed: bytes, length: int) -> bytes:
        """``randombytes_buf_deterministic(length, seed)``."""
        ...


_active: CryptoBackend | None = None

_INSTALL_HINT = (
    "no crypto backend available: on CPython install PyNaCl (pip install pynacl, or the "
    "'xaynet[native]' extra); under Pyodide load libsodium-wrappers, await sodium.ready and "
    'register it with pyodide.registerJsModule("sodium_js", sodium)'
)


def _detect() -> CryptoBackend:
    # Under Pyodide libsodium.js is the binding the page ships; PyNaCl is tried there too in case
    # a build of it was installed. On CPython PyNaCl is the only binding.
    if sys.platform == "emscripten":
        try:
            from xaynet.crypto._sodiumjs import SodiumJsBackend
        except ImportError:
            pass
        else:
            return SodiumJsBackend()
    try:
        from xaynet.crypto._pynacl import PyNaClBackend
    except ImportError:
        raise CryptoUnavailableError(_INSTALL_HINT) from None
    return PyNaClBackend()


def get_backend() -> CryptoBackend:
    """The active backend, detected on first use."""
    global _active  # noqa: PLW0603 -- one backend per process, chosen once and cached
    if _active is None:
        _active = _detect()
    return _active


def set_backend(backend: CryptoBackend | None) -> None:
    """Force a backend (tests, embedders); ``None`` forgets it so the next use detects again."""
    global _active  # noqa: PLW0603 -- see get_backend
    _active = backend
