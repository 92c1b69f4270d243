"""The PyNaCl backend (CPython): libsodium through PyNaCl's low-level bindings.

The bindings are used rather than ``nacl.signing`` / ``nacl.public`` because they take the 64-byte
libsodium secret key as is, without re-deriving it from the seed on every signature.
"""

from __future__ import annotations

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError

__all__ = ["PyNaClBackend"]

_SIGNATURE_BYTES = 64


class PyNaClBackend:
    """libsodium via PyNaCl."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return "pynacl"

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        public, secret = bindings.crypto_sign_seed_keypair(seed)
        return bytes(public), bytes(secret)

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        # crypto_sign returns signature || message; the detached form is its prefix.
        return bytes(bindings.crypto_sign(message, secret_key)[:_SIGNATURE_BYTES])

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> bool:
        try:
            bindings.crypto_sign_open(signature + message, public_key)
        except BadSignatureError:
            return False
        return True

    def box_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        public, secret = bindings.crypto_box_seed_keypair(seed)
        return bytes(public), bytes(secret)

    def box_seal(self, message: bytes, public_key: bytes) -> bytes:
        return bytes(bindings.crypto_box_seal(message, public_key))

    def box_seal_open(
        self, ciphertext: bytes, public_key: bytes, secret_key: bytes
    ) -> bytes | None:
        try:
            return bytes(bindings.crypto_box_seal_open(ciphertext, public_key, secret_key))
        except CryptoError:
            return None

    def prg(self, seed: bytes, length: int) -> bytes:
        return bytes(bindings.randombytes_buf_deterministic(length, seed))
