"""Backend selection: detection, caching, override and the missing-backend error."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from xaynet import crypto
from xaynet.crypto import SigningKeyPair
from xaynet.errors import CryptoUnavailableError, LocalProtocolError


@pytest.fixture(autouse=True)
def _fresh_backend() -> Iterator[None]:
    crypto.set_backend(None)
    yield
    crypto.set_backend(None)


class _RecordingBackend:
    """A stand-in that returns fixed bytes and records what the facade passed down."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[bytes | int, ...]]] = []

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        self.calls.append(("sign_seed_keypair", (seed,)))
        return b"P" * 32, seed + b"P" * 32

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        self.calls.append(("sign_detached", (message, secret_key)))
        return b"S" * 64

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> bool:
        self.calls.append(("sign_verify_detached", (signature, message, public_key)))
        return True

    def box_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        return b"B" * 32, seed

    def box_seal(self, message: bytes, public_key: bytes) -> bytes:
        return b"E" * 48 + message

    def box_seal_open(self, ciphertext: bytes, public_key: bytes, secret_key: bytes) -> None:
        return None

    def prg(self, seed: bytes, length: int) -> bytes:
        self.calls.append(("prg", (seed, length)))
        return b"R" * length


def test_detection_is_cached() -> None:
    first = crypto.get_backend()
    assert crypto.get_backend() is first


def test_set_backend_routes_facade_calls() -> None:
    fake = _RecordingBackend()
    crypto.set_backend(fake)
    assert crypto.get_backend() is fake
    pair = SigningKeyPair.from_seed(bytearray(b"s" * 32))
    assert pair.public == b"P" * 32
    assert pair.sign(b"hello") == b"S" * 64
    assert crypto.verify(pair.public, b"hello", b"x" * 64)
    assert fake.calls == [
        ("sign_seed_keypair", (b"s" * 32,)),
        ("sign_detached", (b"hello", b"s" * 32 + b"P" * 32)),
        ("sign_verify_detached", (b"x" * 64, b"hello", b"P" * 32)),
    ]
    # bytes-like arguments reach the backend as bytes
    assert all(type(arg) is bytes for _, args in fake.calls for arg in args)


def test_set_backend_none_detects_again() -> None:
    crypto.set_backend(_RecordingBackend())
    crypto.set_backend(None)
    assert crypto.get_backend().name in {"pynacl", "libsodium.js"}


def test_wrong_lengths_never_reach_backend() -> None:
    fake = _RecordingBackend()
    crypto.set_backend(fake)
    assert crypto.verify(b"P" * 31, b"m", b"x" * 64) is False
    assert fake.calls == []


def test_missing_backend_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make every binding unimportable: None in sys.modules turns an import into ImportError.
    for name in ("nacl", "sodium_js", "xaynet.crypto._pynacl", "xaynet.crypto._sodiumjs"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(CryptoUnavailableError) as info:
        crypto.get_backend()
    assert isinstance(info.value, LocalProtocolError)
    message = str(info.value)
    assert "pip install pynacl" in message
    assert "sodium_js" in message
    with pytest.raises(CryptoUnavailableError):
        SigningKeyPair.from_seed(bytes(32))
