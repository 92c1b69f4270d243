"""Signatures, sealed boxes, SHA-256 and argument checking of the facade."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xaynet import crypto
from xaynet.crypto import CryptoArgumentError, EncryptKeyPair, SigningKeyPair
from xaynet.errors import DecryptionError, LocalProtocolError, XaynetError

seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(max_size=300)


def _flip(data: bytes, bit: int) -> bytes:
    """``data`` with bit number ``bit`` (counted over the whole string) inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# -- signatures ---------------------------------------------------------------------------------


@given(seed=seeds, message=messages)
def test_sign_verify_round_trip(seed: bytes, message: bytes) -> None:
    pair = SigningKeyPair.from_seed(seed)
    signature = pair.sign(message)
    assert type(signature) is bytes
    assert len(signature) == crypto.SIGNATURE_BYTES
    assert crypto.verify(pair.public, message, signature)


@given(seed=seeds, message=messages.filter(bool), data=st.data())
def test_tampered_message_is_rejected(seed: bytes, message: bytes, data: st.DataObject) -> None:
    pair = SigningKeyPair.from_seed(seed)
    signature = pair.sign(message)
    bit = data.draw(st.integers(0, 8 * len(message) - 1))
    assert not crypto.verify(pair.public, _flip(message, bit), signature)


@given(seed=seeds, message=messages, bit=st.integers(0, 8 * crypto.SIGNATURE_BYTES - 1))
def test_tampered_signature_is_rejected(seed: bytes, message: bytes, bit: int) -> None:
    pair = SigningKeyPair.from_seed(seed)
    assert not crypto.verify(pair.public, message, _flip(pair.sign(message), bit))


@given(seed=seeds, message=messages, bit=st.integers(0, 8 * crypto.PUBLIC_KEY_BYTES - 1))
def test_tampered_public_key_is_rejected(seed: bytes, message: bytes, bit: int) -> None:
    # Some flipped keys are not even valid curve points: still False, never an exception.
    pair = SigningKeyPair.from_seed(seed)
    assert not crypto.verify(_flip(pair.public, bit), message, pair.sign(message))


def test_signature_of_other_key_is_rejected() -> None:
    alice = SigningKeyPair.from_seed(b"\x01" * 32)
    bob = SigningKeyPair.from_seed(b"\x02" * 32)
    assert not crypto.verify(bob.public, b"msg", alice.sign(b"msg"))


@pytest.mark.parametrize(
    ("public_len", "signature_len"), [(31, 64), (33, 64), (0, 64), (32, 63), (32, 65), (32, 0)]
)
def test_verify_wrong_lengths_are_false(public_len: int, signature_len: int) -> None:
    pair = SigningKeyPair.from_seed(b"\x03" * 32)
    signature = pair.sign(b"m")
    public = (pair.public * 2)[:public_len]
    sig = (signature * 2)[:signature_len]
    assert crypto.verify(public, b"m", sig) is False


def test_verify_all_zero_inputs_is_false() -> None:
    assert crypto.verify(bytes(32), b"", bytes(64)) is False


@pytest.mark.parametrize("bad", ["00" * 32, 32, None, [0] * 32])
def test_verify_non_bytes_raises(bad: object) -> None:
    pair = SigningKeyPair.from_seed(b"\x03" * 32)
    with pytest.raises(CryptoArgumentError, match="public_key"):
        crypto.verify(bad, b"m", pair.sign(b"m"))  # type: ignore[arg-type]
    with pytest.raises(CryptoArgumentError, match="signature"):
        crypto.verify(pair.public, b"m", bad)  # type: ignore[arg-type]
    with pytest.raises(CryptoArgumentError, match="message"):
        crypto.verify(pair.public, bad, pair.sign(b"m"))  # type: ignore[arg-type]


# -- sealed boxes -------------------------------------------------------------------------------


@given(seed=seeds, plaintext=messages)
def test_seal_open_round_trip(seed: bytes, plaintext: bytes) -> None:
    pair = EncryptKeyPair.from_seed(seed)
    ciphertext = crypto.seal(pair.public, plaintext)
    assert type(ciphertext) is bytes
    assert len(ciphertext) == len(plaintext) + crypto.SEALED_BOX_OVERHEAD
    opened = pair.open(ciphertext)
    assert type(opened) is bytes
    assert opened == plaintext


def test_seal_is_randomized() -> None:
    pair = EncryptKeyPair.from_seed(b"\x04" * 32)
    assert crypto.seal(pair.public, b"same") != crypto.seal(pair.public, b"same")


@given(plaintext=messages, data=st.data())
def test_tampered_box_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    pair = EncryptKeyPair.from_seed(b"\x05" * 32)
    ciphertext = crypto.seal(pair.public, plaintext)
    bit = data.draw(st.integers(0, 8 * len(ciphertext) - 1))
    with pytest.raises(DecryptionError):
        pair.open(_flip(ciphertext, bit))


def test_box_for_other_key_is_rejected() -> None:
    alice = EncryptKeyPair.from_seed(b"\x06" * 32)
    bob = EncryptKeyPair.from_seed(b"\x08" * 32)
    with pytest.raises(DecryptionError):
        bob.open(crypto.seal(alice.public, b"for alice"))


@pytest.mark.parametrize("length", [0, 1, 47])
def test_short_box_is_rejected(length: int) -> None:
    pair = EncryptKeyPair.from_seed(b"\x05" * 32)
    with pytest.raises(DecryptionError, match="shorter"):
        pair.open(bytes(length))


def test_truncated_and_extended_boxes_are_rejected() -> None:
    pair = EncryptKeyPair.from_seed(b"\x05" * 32)
    ciphertext = crypto.seal(pair.public, b"payload")
    with pytest.raises(DecryptionError):
        pair.open(ciphertext[:-1])
    with pytest.raises(DecryptionError):
        pair.open(ciphertext + b"\x00")


def test_decryption_error_is_remote() -> None:
    # A box that does not open is the peer's fault, not an API misuse.
    pair = EncryptKeyPair.from_seed(b"\x05" * 32)
    with pytest.raises(XaynetError) as info:
        pair.open(bytes(60))
    assert not isinstance(info.value, LocalProtocolError)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_seal_wrong_key_length_raises(length: int) -> None:
    with pytest.raises(CryptoArgumentError, match="public_key: expected 32 bytes"):
        crypto.seal(bytes(length), b"x")


# -- key pairs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SigningKeyPair, EncryptKeyPair])
@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_from_seed_wrong_length_raises(cls: type[SigningKeyPair], length: int) -> None:
    with pytest.raises(CryptoArgumentError, match="seed: expected 32 bytes") as info:
        cls.from_seed(bytes(length))
    assert isinstance(info.value, LocalProtocolError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("cls", [SigningKeyPair, EncryptKeyPair])
@pytest.mark.parametrize("bad", ["0" * 32, 32, None])
def test_from_seed_non_bytes_raises(cls: type[SigningKeyPair], bad: object) -> None:
    with pytest.raises(CryptoArgumentError, match="seed: expected bytes-like"):
        cls.from_seed(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("convert", [bytearray, memoryview])
def test_bytes_like_inputs_give_bytes(convert: type[bytearray] | type[memoryview]) -> None:
    seed = bytes(range(32))
    sign = SigningKeyPair.from_seed(convert(seed))
    assert sign == SigningKeyPair.from_seed(seed)
    assert type(sign.public) is bytes
    assert type(sign.secret) is bytes
    signature = sign.sign(convert(b"msg"))
    assert crypto.verify(convert(sign.public), convert(b"msg"), convert(signature))
    box = EncryptKeyPair.from_seed(convert(seed))
    assert type(box.public) is bytes
    ciphertext = crypto.seal(convert(box.public), convert(b"msg"))
    assert box.open(convert(ciphertext)) == b"msg"
    assert crypto.sha256(convert(b"abc")) == crypto.sha256(b"abc")


def test_constructor_normalizes_and_validates() -> None:
    pair = SigningKeyPair.from_seed(b"\x09" * 32)
    rebuilt = SigningKeyPair(bytearray(pair.public), memoryview(pair.secret))
    assert rebuilt == pair
    assert type(rebuilt.public) is bytes
    with pytest.raises(CryptoArgumentError, match="public"):
        SigningKeyPair(pair.public[:31], pair.secret)
    with pytest.raises(CryptoArgumentError, match="secret"):
        SigningKeyPair(pair.public, pair.secret[:32])
    with pytest.raises(CryptoArgumentError, match="secret"):
        EncryptKeyPair(pair.public, pair.secret)  # 64-byte secret is a signing key


def test_signing_pair_rejects_mismatched_halves() -> None:
    alice = SigningKeyPair.from_seed(b"\x01" * 32)
    bob = SigningKeyPair.from_seed(b"\x02" * 32)
    with pytest.raises(CryptoArgumentError, match="must equal the public key"):
        SigningKeyPair(bob.public, alice.secret)


@pytest.mark.parametrize("cls", [SigningKeyPair, EncryptKeyPair])
def test_repr_hides_secret(cls: type[SigningKeyPair]) -> None:
    seed = bytes(range(100, 132))
    pair = cls.from_seed(seed)
    text = repr(pair)
    assert pair.public.hex() in text or repr(pair.public) in text
    for secret in (pair.secret, pair.secret[:32], seed):
        assert repr(secret) not in text
        assert secret.hex() not in text
    assert "secret" not in text


@pytest.mark.parametrize("cls", [SigningKeyPair, EncryptKeyPair])
def test_key_pairs_are_frozen(cls: type[SigningKeyPair]) -> None:
    pair = cls.from_seed(bytes(32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.public = bytes(32)  # type: ignore[misc]


def test_sign_and_box_keys_differ_for_same_seed() -> None:
    seed = b"\x0a" * 32
    assert SigningKeyPair.from_seed(seed).public != EncryptKeyPair.from_seed(seed).public


# -- sha256 -------------------------------------------------------------------------------------


def test_sha256_known_answer_and_type() -> None:
    digest = crypto.sha256(b"abc")
    assert type(digest) is bytes
    assert len(digest) == crypto.SHA256_BYTES
    assert digest.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("bad", ["abc", 3, None])
def test_sha256_non_bytes_raises(bad: object) -> None:
    with pytest.raises(CryptoArgumentError, match="data"):
        crypto.sha256(bad)  # type: ignore[arg-type]
