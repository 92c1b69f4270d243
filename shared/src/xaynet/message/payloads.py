"""The payloads a participant sends: Sum, Update, Sum2, and Chunk (a piece of one of them).

Wire layouts (integers big-endian)::

    Sum    = sum signature (64) || summer's ephemeral X25519 public key (32)
    Update = sum signature (64) || update signature (64) || MaskObject || LocalSeedDict
    Sum2   = sum signature (64) || MaskObject (the summer's aggregated mask)
    Chunk  = chunk id u16 || message id u16 || flags u8 (bit 0: last chunk) || 3 reserved || data

Every decoder consumes its whole input: trailing bytes are an error, so each payload has exactly
one encoding. Chunk flag bits other than bit 0 and the reserved bytes must be zero, for the reason
given in :mod:`xaynet.message.header`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from xaynet.errors import DecodeError, LocalProtocolError
from xaynet.mask.objects import MaskObject
from xaynet.message._fields import check_uint, set_bytes, set_fixed_bytes
from xaynet.message.header import PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, Tag
from xaynet.message.seed_dict import LocalSeedDict

__all__ = [
    "CHUNK_HEADER_LENGTH",
    "SUM_PAYLOAD_LENGTH",
    "Sum",
    "Update",
    "Sum2",
    "Chunk",
    "Payload",
    "decode_payload",
]

#: Bytes of a chunk's own header before its data.
CHUNK_HEADER_LENGTH = 8
#: Bytes of a Sum payload.
SUM_PAYLOAD_LENGTH = SIGNATURE_LENGTH + PUBLIC_KEY_LENGTH

_CHUNK_HEADER = struct.Struct(">HHB3s")
_CHUNK_LAST = 0x01
_CHUNK_RESERVED = b"\x00\x00\x00"

_Buffer: TypeAlias = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class Sum:
    """A summer announces its ephemeral key; ``sum_signature`` proves its sum eligibility."""

    TAG: ClassVar[Tag] = Tag.SUM

    sum_signature: bytes
    ephm_pk: bytes

    def __post_init__(self) -> None:
        set_fixed_bytes(self, "sum_signature", SIGNATURE_LENGTH)
        set_fixed_bytes(self, "ephm_pk", PUBLIC_KEY_LENGTH)

    @property
    def byte_length(self) -> int:
        return SUM_PAYLOAD_LENGTH

    def to_bytes(self) -> bytes:
        return self.sum_signature + self.ephm_pk

    @classmethod
    def from_bytes(cls, data: _Buffer) -> Sum:
        if len(data) != SUM_PAYLOAD_LENGTH:
            raise DecodeError(f"a Sum payload is {SUM_PAYLOAD_LENGTH} bytes, got {len(data)}")
        view = memoryview(data)
        return cls(bytes(view[:SIGNATURE_LENGTH]), bytes(view[SIGNATURE_LENGTH:]))


@dataclass(frozen=True, slots=True)
class Update:
    """An updater's masked model and its mask seed sealed to every summer.

    ``sum_signature`` proves the updater is *not* sum eligible, ``update_signature`` that it is
    update eligible.
    """

    TAG: ClassVar[Tag] = Tag.UPDATE

    sum_signature: bytes
    update_signature: bytes
    masked_model: MaskObject
    local_seed_dict: LocalSeedDict

    def __post_init__(self) -> None:
        set_fixed_bytes(self, "sum_signature", SIGNATURE_LENGTH)
        set_fixed_bytes(self, "update_signature", SIGNATURE_LENGTH)
        if not isinstance(self.masked_model, MaskObject):
            raise LocalProtocolError("Update.masked_model must be a MaskObject")
        if not isinstance(self.local_seed_dict, LocalSeedDict):
            raise LocalProtocolError("Update.local_seed_dict must be a LocalSeedDict")

    @property
    def byte_length(self) -> int:
        return (
            2 * SIGNATURE_LENGTH + self.masked_model.byte_length + self.local_seed_dict.byte_length
        )

    def to_bytes(self) -> bytes:
        return b"".join(
            (
                self.sum_signature,
                self.update_signature,
                self.masked_model.to_bytes(),
                self.local_seed_dict.to_bytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: _Buffer) -> Update:
        view = memoryview(data)
        if len(view) < 2 * SIGNATURE_LENGTH:
            raise DecodeError("truncated Update payload signatures")
        masked_model, offset = MaskObject.decode(view, 2 * SIGNATURE_LENGTH)
        seed_dict, offset = LocalSeedDict.decode(view, offset)
        _no_trailing(view, offset, "Update")
        return cls(
            bytes(view[:SIGNATURE_LENGTH]),
            bytes(view[SIGNATURE_LENGTH : 2 * SIGNATURE_LENGTH]),
            masked_model,
            seed_dict,
        )


@dataclass(frozen=True, slots=True)
class Sum2:
    """A summer's aggregate of the masks of all updaters, its vote for the unmasking mask."""

    TAG: ClassVar[Tag] = Tag.SUM2

    sum_signature: bytes
    model_mask: MaskObject

    def __post_init__(self) -> None:
        set_fixed_bytes(self, "sum_signature", SIGNATURE_LENGTH)
        if not isinstance(self.model_mask, MaskObject):
            raise LocalProtocolError("Sum2.model_mask must be a MaskObject")

    @property
    def byte_length(self) -> int:
        return SIGNATURE_LENGTH + self.model_mask.byte_length

    def to_bytes(self) -> bytes:
        return self.sum_signature + self.model_mask.to_bytes()

    @classmethod
    def from_bytes(cls, data: _Buffer) -> Sum2:
        view = memoryview(data)
        if len(view) < SIGNATURE_LENGTH:
            raise DecodeError("truncated Sum2 payload signature")
        model_mask, offset = MaskObject.decode(view, SIGNATURE_LENGTH)
        _no_trailing(view, offset, "Sum2")
        return cls(bytes(view[:SIGNATURE_LENGTH]), model_mask)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a payload too large for one message.

    Pieces share ``message_id`` (chosen by the sender), are numbered by ``chunk_id`` from 0,
    and the final one has ``last`` set. ``data`` is never empty.
    """

    chunk_id: int
    message_id: int
    last: bool
    data: bytes

    def __post_init__(self) -> None:
        check_uint(self.chunk_id, "chunk_id", 16)
        check_uint(self.message_id, "message_id", 16)
        if not isinstance(self.last, bool):
            raise LocalProtocolError("Chunk.last must be a bool")
        if not set_bytes(self, "data"):
            raise LocalProtocolError("a chunk carries at least one byte")

    @property
    def byte_length(self) -> int:
        return CHUNK_HEADER_LENGTH + len(self.data)

    def to_bytes(self) -> bytes:
        flags = _CHUNK_LAST if self.last else 0
        return (
            _CHUNK_HEADER.pack(self.chunk_id, self.message_id, flags, _CHUNK_RESERVED) + self.data
        )

    @classmethod
    def from_bytes(cls, data: _Buffer) -> Chunk:
        view = memoryview(data)
        if len(view) <= CHUNK_HEADER_LENGTH:
            raise DecodeError(
                f"a chunk is its {CHUNK_HEADER_LENGTH}-byte header and at least one data byte, "
                f"got {len(view)} bytes"
            )
        chunk_id, message_id, flags, reserved = _CHUNK_HEADER.unpack_from(view)
        if flags & ~_CHUNK_LAST:
            raise DecodeError(f"unknown chunk flags 0x{flags:02x}")
        if reserved != _CHUNK_RESERVED:
            raise DecodeError("the reserved chunk bytes are not zero")
        return cls(
            chunk_id, message_id, bool(flags & _CHUNK_LAST), bytes(view[CHUNK_HEADER_LENGTH:])
        )


#: Any payload a message can carry.
Payload: TypeAlias = Sum | Update | Sum2 | Chunk

_BY_TAG: dict[Tag, type[Sum] | type[Update] | type[Sum2]] = {
    Tag.SUM: Sum,
    Tag.UPDATE: Update,
    Tag.SUM2: Sum2,
}


def decode_payload(tag: Tag, data: _Buffer, *, multipart: bool = False) -> Payload:
    """Parse a whole payload: a :class:`Chunk` if ``multipart``, else the type ``tag`` names."""
    if multipart:
        return Chunk.from_bytes(data)
    return _BY_TAG[tag].from_bytes(data)


def _no_trailing(view: memoryview, end: int, what: str) -> None:
    if end != len(view):
        raise DecodeError(f"{len(view) - end} trailing bytes after the {what} payload")
