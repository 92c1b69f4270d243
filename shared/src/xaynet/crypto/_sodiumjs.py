"""The libsodium.js backend (Pyodide): libsodium-wrappers registered as the JS module ``sodium_js``.

The host page or runner must ``await sodium.ready`` and call
``pyodide.registerJsModule("sodium_js", sodium)`` before the first crypto call. Arguments cross
into JS as ``Uint8Array`` copies (``to_js``; a bare ``bytes`` would arrive as an opaque proxy) and
results come back with ``.to_bytes()``.
"""

from __future__ import annotations

from typing import Any

import sodium_js
from pyodide.ffi import JsException, to_js

__all__ = ["SodiumJsBackend"]


def _js(data: bytes) -> Any:
    return to_js(data)


class SodiumJsBackend:
    """libsodium via libsodium.js (WebAssembly)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return "libsodium.js"

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        pair = sodium_js.crypto_sign_seed_keypair(_js(seed))
        return bytes(pair.publicKey.to_bytes()), bytes(pair.privateKey.to_bytes())

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        return bytes(sodium_js.crypto_sign_detached(_js(message), _js(secret_key)).to_bytes())

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> bool:
        try:
            return bool(
                sodium_js.crypto_sign_verify_detached(_js(signature), _js(message), _js(public_key))
            )
        except JsException:
            # The wrapper throws instead of returning false for some malformed inputs.
            return False

    def box_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        pair = sodium_js.crypto_box_seed_keypair(_js(seed))
        return bytes(pair.publicKey.to_bytes()), bytes(pair.privateKey.to_bytes())

    def box_seal(self, message: bytes, public_key: bytes) -> bytes:
        return bytes(sodium_js.crypto_box_seal(_js(message), _js(public_key)).to_bytes())

    def box_seal_open(
        self, ciphertext: bytes, public_key: bytes, secret_key: bytes
    ) -> bytes | None:
        try:
            opened = sodium_js.crypto_box_seal_open(
                _js(ciphertext), _js(public_key), _js(secret_key)
            )
        except JsException:
            # libsodium.js reports a box that does not open by throwing.
            return None
        return bytes(opened.to_bytes())

    def prg(self, seed: bytes, length: int) -> bytes:
        return bytes(sodium_js.randombytes_buf_deterministic(length, _js(seed)).to_bytes())
