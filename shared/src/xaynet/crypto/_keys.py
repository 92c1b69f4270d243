"""Key pairs, signatures, sealed boxes and SHA-256 on top of the active backend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from xaynet.crypto._backend import get_backend
from xaynet.crypto._common import (
    ENCRYPT_SECRET_KEY_BYTES,
    PUBLIC_KEY_BYTES,
    SEALED_BOX_OVERHEAD,
    SEED_BYTES,
    SIGNATURE_BYTES,
    SIGNING_SECRET_KEY_BYTES,
    CryptoArgumentError,
    as_bytes,
    as_sized,
)
from xaynet.errors import DecryptionError

__all__ = ["SigningKeyPair", "EncryptKeyPair", "verify", "seal", "sha256"]


@dataclass(frozen=True, slots=True)
class SigningKeyPair:
    """An Ed25519 key pair in libsodium's format: ``secret`` is the 32-byte seed then ``public``.

    Bytes-like arguments are stored as ``bytes``. The repr shows the public key only.
    """

    public: bytes
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        public = as_sized("public", self.public, PUBLIC_KEY_BYTES)
        secret = as_sized("secret", self.secret, SIGNING_SECRET_KEY_BYTES)
        if secret[SEED_BYTES:] != public:
            # Catches swapped or mismatched keys early instead of producing bad signatures.
            raise CryptoArgumentError("secret: its last 32 bytes must equal the public key")
        object.__setattr__(self, "public", public)
        object.__setattr__(self, "secret", secret)

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKeyPair:
        """The key pair of a 32-byte seed (``crypto_sign_seed_keypair``); the caller draws it."""
        public, secret = get_backend().sign_seed_keypair(as_sized("seed", seed, SEED_BYTES))
        return cls(public, secret)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of ``message``."""
        return get_backend().sign_detached(as_bytes("message", message), self.secret)


@dataclass(frozen=True, slots=True)
class EncryptKeyPair:
    """An X25519 key pair for sealed boxes (``crypto_box``). The repr shows the public key only."""

    public: bytes
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public", as_sized("public", self.public, PUBLIC_KEY_BYTES))
        object.__setattr__(
            self, "secret", as_sized("secret", self.secret, ENCRYPT_SECRET_KEY_BYTES)
        )

    @classmethod
    def from_seed(cls, seed: bytes) -> EncryptKeyPair:
        """The key pair of a 32-byte seed (``crypto_box_seed_keypair``); the caller draws it."""
        public, secret = get_backend().box_seed_keypair(as_sized("seed", seed, SEED_BYTES))
        return cls(public, secret)

    def open(self, ciphertext: bytes) -> bytes:
        """Open a sealed box addressed to this key pair.

        Raises :class:`~xaynet.errors.DecryptionError` if it is too short, was sealed to another
        key or was altered.
        """
        data = as_bytes("ciphertext", ciphertext)
        if len(data) < SEALED_BOX_OVERHEAD:
            raise DecryptionError(
                f"sealed box of {len(data)} bytes is shorter than its {SEALED_BOX_OVERHEAD}-byte "
                "overhead"
            )
        plaintext = get_backend().box_seal_open(data, self.public, self.secret)
        if plaintext is None:
            raise DecryptionError("sealed box does not open with this key (wrong key or altered)")
        return plaintext


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` under ``public_key``.

    Returns ``False`` (never raises) for any key or signature bytes, including wrong lengths:
    both usually come from a peer. Only non-bytes arguments raise.
    """
    public = as_bytes("public_key", public_key)
    data = as_bytes("message", message)
    sig = as_bytes("signature", signature)
    if len(public) != PUBLIC_KEY_BYTES or len(sig) != SIGNATURE_BYTES:
        return False
    return get_backend().sign_verify_detached(sig, data, public)


def seal(public_key: bytes, plaintext: bytes) -> bytes:
    """``crypto_box_seal``: encrypt ``plaintext`` to ``public_key`` (adds 48 bytes).

    The one exception to "randomness is passed in": the throw-away key pair of the box is drawn
    by libsodium itself, because no libsodium binding accepts it as an argument.
    """
    public = as_sized("public_key", public_key, PUBLIC_KEY_BYTES)
    return get_backend().box_seal(as_bytes("plaintext", plaintext), public)


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of ``data``."""
    return hashlib.sha256(as_bytes("data", data)).digest()
