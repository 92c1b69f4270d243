"""The cryptography of the protocol, one facade over libsodium in every runtime.

* Ed25519 signatures (:class:`SigningKeyPair`, :func:`verify`) -- participant identities,
  message signatures and task-selection signatures.
* Sealed boxes (:class:`EncryptKeyPair`, :func:`seal`) -- messages to the coordinator and mask
  seeds to summers.
* SHA-256 (:func:`sha256`) and the deterministic PRG (:func:`prg`, :class:`Keystream`) that
  expands mask seeds.

The backend is picked on first use (:func:`get_backend`): libsodium.js under Pyodide (the JS
module ``sodium_js``), PyNaCl elsewhere; without either,
:class:`~xaynet.errors.CryptoUnavailableError`.
All formats are libsodium's, so keys, signatures and boxes interoperate across runtimes.

Sans-IO: key pairs are made from seeds the caller draws. The only randomness drawn here is the
ephemeral key inside :func:`seal`, which libsodium's API does not let a caller supply.
Arguments are bytes-like (``bytes``, ``bytearray``, ``memoryview``); results are ``bytes``.
Misuse (wrong type or length) raises :class:`CryptoArgumentError`.
"""

from __future__ import annotations

from xaynet.crypto._backend import CryptoBackend, get_backend, set_backend
from xaynet.crypto._common import (
    ENCRYPT_SECRET_KEY_BYTES,
    PRG_MAX_BYTES,
    PUBLIC_KEY_BYTES,
    SEALED_BOX_OVERHEAD,
    SEED_BYTES,
    SHA256_BYTES,
    SIGNATURE_BYTES,
    SIGNING_SECRET_KEY_BYTES,
    CryptoArgumentError,
)
from xaynet.crypto._keys import EncryptKeyPair, SigningKeyPair, seal, sha256, verify
from xaynet.crypto._prg import Keystream, prg

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
    "SigningKeyPair",
    "EncryptKeyPair",
    "verify",
    "seal",
    "sha256",
    "prg",
    "Keystream",
    "CryptoBackend",
    "get_backend",
    "set_backend",
]
