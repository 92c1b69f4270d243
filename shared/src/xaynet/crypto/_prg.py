"""The deterministic PRG: libsodium's ``randombytes_buf_deterministic`` stream, whole or piecewise.

Masks are expanded from a 32-byte seed, and every runtime must draw exactly the same bytes from it,
so the stream is libsodium's (ChaCha20-IETF, key = seed, nonce ``"LibsodiumDRG"``). OpenSSL
computes the same stream faster and can continue it; it is used whenever ``cryptography`` is
importable, otherwise the crypto backend's libsodium call is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from xaynet.crypto._backend import get_backend
from xaynet.crypto._common import (
    PRG_MAX_BYTES,
    SEED_BYTES,
    CryptoArgumentError,
    as_length,
    as_sized,
)

__all__ = ["Keystream", "prg"]


class _Stream(Protocol):
    def read(self, n: int) -> bytes: ...


class _FastPath:
    """OpenSSL's implementation of the stream: one-shot and continuable."""

    __slots__ = ("keystream", "stream")

    def __init__(
        self, keystream: Callable[[bytes, int], bytes], stream: Callable[[bytes], _Stream]
    ) -> None:
        self.keystream = keystream
        self.stream = stream


# None: not probed yet; False: no usable OpenSSL ChaCha20.
_fast: _FastPath | bool | None = None

# Smallest prefix the libsodium fallback of Keystream generates, to keep tiny reads cheap.
_MIN_REFILL = 4096


def _fast_path() -> _FastPath | None:
    global _fast  # noqa: PLW0603 -- probed once per process; the answer never changes
    if _fast is None:
        try:
            from xaynet.crypto import _openssl
        except ImportError:
            _fast = False
        else:
            _fast = (
                _FastPath(_openssl.keystream, _openssl.OpenSSLStream)
                if _openssl.available()
                else False
            )
    return _fast if isinstance(_fast, _FastPath) else None


def prg(seed: bytes, length: int) -> bytes:
    """``randombytes_buf_deterministic(length, seed)``: ``length`` bytes expanded from ``seed``.

    With ``cryptography`` installed the bytes come from OpenSSL whatever :func:`set_backend`
    chose (they are identical); ``length`` is at most ``2**38`` (libsodium's limit).
    """
    seed = as_sized("seed", seed, SEED_BYTES)
    length = as_length("length", length)
    fast = _fast_path()
    if fast is not None:
        return fast.keystream(seed, length)
    return get_backend().prg(seed, length)


class Keystream:
    """Sequential reader of the :func:`prg` stream of ``seed``.

    Chunks returned by :meth:`read` concatenate to ``prg(seed, position)``. With OpenSSL the
    cipher stays open; without it, libsodium can only produce prefixes, so when the buffer runs
    out a longer prefix is generated, at least doubling each time (the total work stays below
    about twice the bytes read), and only its unread tail is kept.
    """

    __slots__ = ("_buffer", "_buffer_start", "_position", "_seed", "_stream")

    def __init__(self, seed: bytes) -> None:
        self._seed = as_sized("seed", seed, SEED_BYTES)
        self._position = 0
        fast = _fast_path()
        self._stream = fast.stream(self._seed) if fast is not None else None
        # libsodium fallback: stream bytes [_buffer_start, _buffer_start + len(_buffer)).
        self._buffer = memoryview(b"")
        self._buffer_start = 0

    def __repr__(self) -> str:
        # The seed is a secret (it regenerates a mask): never show it.
        return f"Keystream(position={self._position})"

    @property
    def position(self) -> int:
        """Number of bytes read so far."""
        return self._position

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream."""
        n = as_length("n", n)
        end = self._position + n
        if end > PRG_MAX_BYTES:
            raise CryptoArgumentError(f"cannot read past 2**38 bytes of stream (to {end})")
        data = self._stream.read(n) if self._stream is not None else self._read_prefix(end)
        self._position = end
        return data

    def _read_prefix(self, end: int) -> bytes:
        buffer_end = self._buffer_start + len(self._buffer)
        if end > buffer_end:
            size = min(PRG_MAX_BYTES, max(end, 2 * buffer_end, _MIN_REFILL))
            prefix = get_backend().prg(self._seed, size)
            # Copy the tail so the already-read head of the prefix can be freed.
            self._buffer = memoryview(prefix[self._position :])
            self._buffer_start = self._position
        offset = self._position - self._buffer_start
        return bytes(self._buffer[offset : offset + end - self._position])
