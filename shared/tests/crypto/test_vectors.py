"""Known-answer tests: every vector in vectors/crypto.json against the ACTIVE backend.

Under CPython that is PyNaCl, under Pyodide libsodium.js, so the same file proves both produce
libsodium's exact keys, signatures, PRG bytes and box format.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from xaynet import crypto

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
VECTORS: dict[str, Any] = json.loads((VECTORS_DIR / "crypto.json").read_text(encoding="utf-8"))


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_expected_backend_is_active() -> None:
    expected = "libsodium.js" if sys.platform == "emscripten" else "pynacl"
    assert crypto.get_backend().name == expected


@pytest.mark.parametrize("vector", VECTORS["signing"], ids=lambda v: v["seed"][:8])
def test_signing_keypair_and_signatures(vector: dict[str, Any]) -> None:
    pair = crypto.SigningKeyPair.from_seed(_h(vector["seed"]))
    assert pair.public == _h(vector["public"])
    assert pair.secret == _h(vector["secret"])
    for case in vector["signatures"]:
        message, signature = _h(case["message"]), _h(case["signature"])
        assert pair.sign(message) == signature
        assert crypto.verify(pair.public, message, signature)


def test_rfc8032_test1() -> None:
    vector = VECTORS["rfc8032"]
    pair = crypto.SigningKeyPair.from_seed(_h(vector["seed"]))
    assert pair.public == _h(vector["public"])
    assert pair.sign(_h(vector["message"])) == _h(vector["signature"])


def test_anchor_from_libsodium_js() -> None:
    # Measured with libsodium.js 1.0.22 in the browser spike, independently of this file.
    pair = crypto.SigningKeyPair.from_seed(b"\x07" * 32)
    assert pair.public.hex().startswith("ea4a6c63e29c520a")


@pytest.mark.parametrize("vector", VECTORS["box"], ids=lambda v: v["seed"][:8])
def test_box_keypair(vector: dict[str, Any]) -> None:
    pair = crypto.EncryptKeyPair.from_seed(_h(vector["seed"]))
    assert pair.public == _h(vector["public"])
    assert pair.secret == _h(vector["secret"])


@pytest.mark.parametrize("vector", VECTORS["sha256"], ids=lambda v: v["data"][:8] or "empty")
def test_sha256(vector: dict[str, Any]) -> None:
    assert crypto.sha256(_h(vector["data"])) == _h(vector["digest"])


@pytest.mark.parametrize("vector", VECTORS["prg"], ids=lambda v: f"{v['seed'][:4]}-{v['length']}")
def test_prg(vector: dict[str, Any]) -> None:
    seed, length, output = _h(vector["seed"]), vector["length"], _h(vector["output"])
    assert len(output) == length
    assert crypto.prg(seed, length) == output
    # The backend's own libsodium call, in case prg() took the OpenSSL fast path.
    assert crypto.get_backend().prg(seed, length) == output
    stream = crypto.Keystream(seed)
    half = length // 2
    assert stream.read(half) + stream.read(length - half) == output


@pytest.mark.parametrize("vector", VECTORS["sealed"], ids=lambda v: str(len(v["plaintext"]) // 2))
def test_sealed_box_opens(vector: dict[str, Any]) -> None:
    pair = crypto.EncryptKeyPair.from_seed(_h(vector["recipient_seed"]))
    ciphertext = _h(vector["ciphertext"])
    assert len(ciphertext) == len(_h(vector["plaintext"])) + crypto.SEALED_BOX_OVERHEAD
    assert pair.open(ciphertext) == _h(vector["plaintext"])


@pytest.mark.pynacl
def test_vector_file_is_reproducible() -> None:
    """The committed file is exactly what the generator writes (no hand edits, no drift)."""
    spec = importlib.util.spec_from_file_location(
        "generate_crypto", VECTORS_DIR / "generate_crypto.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (VECTORS_DIR / "crypto.json").read_text(encoding="utf-8")
