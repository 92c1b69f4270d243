"""Whole messages: sign and encode, parse and verify, seal and open.

A participant builds a :class:`Message`, turns it into signed bytes with :meth:`Message.to_bytes`
and seals those to the coordinator's round key with :func:`seal_message`. The coordinator opens
the box (:func:`open_message`), may look at the unverified header (:func:`parse_header`) to drop
messages for another phase or round cheaply, then calls :meth:`Message.from_bytes`, which checks
the signature before it parses the payload.

The order is sign-then-seal, and the coordinator's round key is inside the signed header: a
message cannot be re-sealed by whoever opens it to a different coordinator or round unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from xaynet.errors import DecodeError, LocalProtocolError, SignatureError
from xaynet.message._fields import set_fixed_bytes
from xaynet.message.header import (
    FLAG_MULTIPART,
    HEADER_LENGTH,
    PUBLIC_KEY_LENGTH,
    SEAL_OVERHEAD,
    SIGNATURE_LENGTH,
    Header,
    Tag,
    encode_unsigned_header,
    parse_header,
    to_tag,
)
from xaynet.message.payloads import Chunk, Payload, Sum, Sum2, Update, decode_payload

if TYPE_CHECKING:
    from xaynet.crypto import EncryptKeyPair, SigningKeyPair

__all__ = ["Message", "verify_signature", "seal_message", "open_message"]

_Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """A message from a participant to the coordinator, before signing / after verification.

    ``tag`` follows from the payload for Sum, Update and Sum2 (passing it is optional and must
    agree); a :class:`Chunk` needs it: the tag of the message the chunk is a piece of.
    """

    participant_pk: bytes
    coordinator_pk: bytes
    payload: Payload
    tag: Tag

    def __init__(
        self,
        participant_pk: bytes,
        coordinator_pk: bytes,
        payload: Payload,
        tag: Tag | None = None,
    ) -> None:
        object.__setattr__(self, "participant_pk", participant_pk)
        object.__setattr__(self, "coordinator_pk", coordinator_pk)
        object.__setattr__(self, "payload", payload)
        set_fixed_bytes(self, "participant_pk", PUBLIC_KEY_LENGTH)
        set_fixed_bytes(self, "coordinator_pk", PUBLIC_KEY_LENGTH)
        if isinstance(payload, Chunk):
            if tag is None:
                raise LocalProtocolError("a chunk message needs the tag of the chunked message")
            tag = to_tag(tag)
        elif isinstance(payload, Sum | Update | Sum2):
            if tag is not None and to_tag(tag) is not payload.TAG:
                raise LocalProtocolError(
                    f"tag {tag!r} does not match the {type(payload).__name__} payload"
                )
            tag = payload.TAG
        else:
            raise LocalProtocolError(f"not a message payload: {type(payload).__name__}")
        object.__setattr__(self, "tag", tag)

    @property
    def is_multipart(self) -> bool:
        return isinstance(self.payload, Chunk)

    @property
    def byte_length(self) -> int:
        """Bytes of the signed plaintext message; add :data:`SEAL_OVERHEAD` for the wire."""
        return HEADER_LENGTH + self.payload.byte_length

    # -- encoding ------------------------------------------------------------------------------

    def to_unsigned_bytes(self) -> bytes:
        """The signed part: the message without its first 64 bytes (the signature)."""
        payload = self.payload.to_bytes()
        header = encode_unsigned_header(
            self.participant_pk,
            self.coordinator_pk,
            HEADER_LENGTH + len(payload),
            self.tag,
            FLAG_MULTIPART if self.is_multipart else 0,
        )
        return header + payload

    def to_bytes(self, signing_key: SigningKeyPair) -> bytes:
        """Sign with the participant's key and encode. Ed25519 makes the result deterministic."""
        if signing_key.public != self.participant_pk:
            raise LocalProtocolError("the signing key does not belong to the message's participant")
        unsigned = self.to_unsigned_bytes()
        signature = signing_key.sign(unsigned)
        if len(signature) != SIGNATURE_LENGTH:  # a broken backend must not produce bad messages
            raise LocalProtocolError(f"signature of {len(signature)} bytes")
        return signature + unsigned

    # -- decoding ------------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: _Buffer) -> Message:
        """Parse a plaintext message and verify its signature.

        Raises :class:`DecodeError` for malformed bytes and :class:`SignatureError` when the
        signature does not verify under the participant key in the header. The payload is parsed
        only after the signature has been checked. The coordinator key is returned, not checked:
        compare it with the current round key.
        """
        header = parse_header(data)
        verify_signature(data, header)
        return cls._with_payload(header, memoryview(data)[HEADER_LENGTH:])

    @classmethod
    def decode_unverified(cls, data: _Buffer) -> Message:
        """Parse a plaintext message *without* checking its signature (tests, tooling)."""
        header = parse_header(data)
        return cls._with_payload(header, memoryview(data)[HEADER_LENGTH:])

    @classmethod
    def _with_payload(cls, header: Header, payload: memoryview) -> Message:
        parsed = decode_payload(header.tag, payload, multipart=header.is_multipart)
        return cls(header.participant_pk, header.coordinator_pk, parsed, header.tag)


def verify_signature(data: _Buffer, header: Header) -> None:
    """Check the message signature over bytes ``[64, length)``; :class:`SignatureError` if not."""
    from xaynet import crypto

    signed = bytes(memoryview(data)[SIGNATURE_LENGTH : header.length])
    if not crypto.verify(header.participant_pk, signed, header.signature):
        raise SignatureError("the message signature does not verify")


def seal_message(message_bytes: _Buffer, coordinator_pk: bytes) -> bytes:
    """Seal a signed message to the coordinator's round key (adds :data:`SEAL_OVERHEAD` bytes).

    ``coordinator_pk`` must be the key named in the message header: sealing to another key would
    produce a box that the intended coordinator rejects.
    """
    from xaynet import crypto

    try:
        header = parse_header(message_bytes)
    except DecodeError as exc:
        raise LocalProtocolError(f"not an encoded message: {exc}") from None
    if header.coordinator_pk != bytes(coordinator_pk):
        raise LocalProtocolError("the message names a different coordinator key")
    return crypto.seal(header.coordinator_pk, bytes(message_bytes))


def open_message(sealed: _Buffer, keypair: EncryptKeyPair) -> bytes:
    """Open a sealed message with the round key pair; :class:`DecryptionError` if it fails.

    Returns the plaintext message, to be checked with :func:`parse_header` and
    :meth:`Message.from_bytes`. A box too short to hold a header is rejected before decryption.
    """
    if len(sealed) < SEAL_OVERHEAD + HEADER_LENGTH:
        raise DecodeError(
            f"a sealed message is at least {SEAL_OVERHEAD + HEADER_LENGTH} bytes, got {len(sealed)}"
        )
    return keypair.open(bytes(sealed))
