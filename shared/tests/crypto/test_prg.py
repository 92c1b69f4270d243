"""The deterministic PRG: OpenSSL fast path == libsodium, and Keystream == prg."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaynet import crypto
from xaynet.crypto import CryptoArgumentError, Keystream, _prg

seeds = st.binary(min_size=32, max_size=32)
LENGTHS = [0, 1, 63, 64, 65, 1000, 10**6]


# Run a test once as configured (OpenSSL if present) and once forced onto libsodium.
paths = pytest.mark.parametrize("path", ["default", "libsodium"])


@contextmanager
def stream_path(path: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        if path == "libsodium":
            patch.setattr(_prg, "_fast", False)
        yield


@pytest.mark.pynacl
@pytest.mark.parametrize("length", LENGTHS)
@settings(max_examples=10)
@given(seed=seeds)
def test_openssl_matches_libsodium(length: int, seed: bytes) -> None:
    pytest.importorskip("cryptography")
    from xaynet.crypto import _openssl
    from xaynet.crypto._pynacl import PyNaClBackend

    expected = PyNaClBackend().prg(seed, length)
    assert len(expected) == length
    assert _openssl.keystream(seed, length) == expected
    stream = _openssl.OpenSSLStream(seed)
    third = length // 3
    assert stream.read(third) + stream.read(length - third) == expected


@pytest.mark.pynacl
def test_fast_path_is_used_when_available() -> None:
    pytest.importorskip("cryptography")
    assert _prg._fast_path() is not None
    assert Keystream(bytes(32))._stream is not None


@paths
@given(seed=seeds, sizes=st.lists(st.integers(0, 300), max_size=20))
def test_keystream_chunks_concatenate_to_prg(path: str, seed: bytes, sizes: list[int]) -> None:
    with stream_path(path):
        stream = Keystream(seed)
        chunks = []
        for size in sizes:
            chunk = stream.read(size)
            assert type(chunk) is bytes
            assert len(chunk) == size
            chunks.append(chunk)
        assert stream.position == sum(sizes)
        assert b"".join(chunks) == crypto.prg(seed, sum(sizes))


@paths
@settings(max_examples=20)
@given(sizes=st.lists(st.integers(0, 9000), min_size=1, max_size=8))
def test_keystream_large_reads_cross_refills(path: str, sizes: list[int]) -> None:
    # Reads around and beyond the libsodium fallback's 4096-byte first refill and its doublings.
    seed = b"\x11" * 32
    with stream_path(path):
        stream = Keystream(seed)
        data = b"".join(stream.read(size) for size in sizes)
        assert data == crypto.prg(seed, sum(sizes))


@paths
def test_prg_is_prefix_consistent_and_seed_dependent(path: str) -> None:
    with stream_path(path):
        long = crypto.prg(b"\x01" * 32, 5000)
        assert crypto.prg(b"\x01" * 32, 1234) == long[:1234]
        assert crypto.prg(b"\x02" * 32, 5000) != long
        assert crypto.prg(b"\x01" * 32, 0) == b""


def test_prg_accepts_bytes_like_seed() -> None:
    seed = bytes(range(32))
    assert crypto.prg(bytearray(seed), 100) == crypto.prg(seed, 100)
    assert Keystream(memoryview(seed)).read(100) == crypto.prg(seed, 100)


@pytest.mark.parametrize("length", [-1, True, 1.0, "10", None, crypto.PRG_MAX_BYTES + 1])
def test_prg_rejects_bad_lengths(length: object) -> None:
    with pytest.raises(CryptoArgumentError, match="length"):
        crypto.prg(bytes(32), length)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), b"", "0" * 32, None])
def test_prg_and_keystream_reject_bad_seeds(seed: object) -> None:
    with pytest.raises(CryptoArgumentError, match="seed"):
        crypto.prg(seed, 10)  # type: ignore[arg-type]
    with pytest.raises(CryptoArgumentError, match="seed"):
        Keystream(seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [-1, False, 2.0])
def test_keystream_rejects_bad_sizes(n: object) -> None:
    stream = Keystream(bytes(32))
    with pytest.raises(CryptoArgumentError, match="n:"):
        stream.read(n)  # type: ignore[arg-type]
    assert stream.position == 0


def test_keystream_refuses_to_pass_libsodium_limit() -> None:
    stream = Keystream(bytes(32))
    stream._position = crypto.PRG_MAX_BYTES - 1  # stand-in for having read almost 2**38 bytes
    with pytest.raises(CryptoArgumentError, match="2\\*\\*38"):
        stream.read(2)
    assert stream.position == crypto.PRG_MAX_BYTES - 1


def test_keystream_repr_hides_seed() -> None:
    seed = bytes(range(7, 39))
    stream = Keystream(seed)
    stream.read(5)
    assert repr(stream) == "Keystream(position=5)"
    assert seed.hex() not in repr(stream)
