"""The 136-byte message header, message tags and the shared wire constants.

Layout (integers big-endian)::

    offset  size  field
       0     64   Ed25519 signature over bytes [64, length) of the message
      64     32   participant Ed25519 public key
      96     32   coordinator X25519 round public key
     128      4   length u32: the whole message, header included
     132      1   tag: 1 Sum, 2 Update, 3 Sum2
     133      1   flags: bit 0 = multipart (the payload is a chunk); other bits are 0
     134      2   reserved, 0
     136      .   payload

Unlike the original, decoding is strict: the buffer must be exactly ``length`` bytes long (bytes
past ``length`` would not be signed), and unknown flag bits and non-zero reserved bytes are
rejected. Accepting them would let a peer change the bytes of a message without changing its
meaning, and would make it impossible to give those bits a meaning later: a new flag or a new use
of the reserved bytes must be a deliberate, versioned change that old decoders refuse.

:func:`parse_header` reads the header without checking the signature so that a coordinator can
drop messages for the wrong phase or round before paying for signature verification.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from xaynet.errors import DecodeError, LocalProtocolError
from xaynet.message._fields import check_uint, set_fixed_bytes

__all__ = [
    "HEADER_LENGTH",
    "SEAL_OVERHEAD",
    "SIGNATURE_LENGTH",
    "PUBLIC_KEY_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "FLAG_MULTIPART",
    "Tag",
    "Header",
    "parse_header",
]

#: Bytes of the header that precedes every payload.
HEADER_LENGTH = 136
#: Bytes a sealed box adds to the message it carries (ephemeral public key 32 + MAC 16).
SEAL_OVERHEAD = 48
#: Bytes of an Ed25519 signature.
SIGNATURE_LENGTH = 64
#: Bytes of an Ed25519 or X25519 public key.
PUBLIC_KEY_LENGTH = 32
#: The largest ``length`` the u32 field can announce.
MAX_MESSAGE_LENGTH = 2**32 - 1
#: Header flag: the payload is one chunk of a larger message.
FLAG_MULTIPART = 0x01

# length u32, tag u8, flags u8, reserved 2 bytes
_TAIL = struct.Struct(">IBB2s")
_RESERVED = b"\x00\x00"


class Tag(enum.IntEnum):
    """The kind of message. A chunk carries the tag of the message it is a piece of."""

    SUM = 1
    UPDATE = 2
    SUM2 = 3


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed, *unverified* header."""

    signature: bytes
    participant_pk: bytes
    coordinator_pk: bytes
    length: int
    tag: Tag
    flags: int

    def __post_init__(self) -> None:
        set_fixed_bytes(self, "signature", SIGNATURE_LENGTH)
        set_fixed_bytes(self, "participant_pk", PUBLIC_KEY_LENGTH)
        set_fixed_bytes(self, "coordinator_pk", PUBLIC_KEY_LENGTH)
        check_uint(self.length, "length", 32)
        object.__setattr__(self, "tag", to_tag(self.tag))
        check_uint(self.flags, "flags", 8)
        if self.flags & ~FLAG_MULTIPART:
            raise LocalProtocolError(f"unknown header flags 0x{self.flags:02x}")

    @property
    def is_multipart(self) -> bool:
        return bool(self.flags & FLAG_MULTIPART)

    def to_bytes(self) -> bytes:
        """The 136 header bytes."""
        return (
            self.signature
            + self.participant_pk
            + self.coordinator_pk
            + _TAIL.pack(self.length, self.tag, self.flags, _RESERVED)
        )


def to_tag(value: object) -> Tag:
    """``value`` as a :class:`Tag`; :class:`LocalProtocolError` if it names none."""
    if isinstance(value, Tag):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return Tag(value)
        except ValueError:
            pass
    raise LocalProtocolError(f"not a message tag: {value!r}")


def encode_unsigned_header(
    participant_pk: bytes, coordinator_pk: bytes, length: int, tag: Tag, flags: int
) -> bytes:
    """The 72 header bytes after the signature (the start of the signed part)."""
    if not HEADER_LENGTH <= length <= MAX_MESSAGE_LENGTH:
        raise LocalProtocolError(
            f"a message is between {HEADER_LENGTH} and {MAX_MESSAGE_LENGTH} bytes, got {length}"
        )
    return participant_pk + coordinator_pk + _TAIL.pack(length, tag, flags, _RESERVED)


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    """Parse and check the header of the complete plaintext message ``data``.

    Checks the length field against the buffer, the tag, the flags and the reserved bytes; does
    *not* verify the signature nor look at the payload. Raises :class:`DecodeError`.
    """
    view = memoryview(data)
    if len(view) < HEADER_LENGTH:
        raise DecodeError(f"a message is at least {HEADER_LENGTH} bytes, got {len(view)}")
    length, tag, flags, reserved = _TAIL.unpack_from(view, 128)
    if length != len(view):
        raise DecodeError(f"the header announces {length} bytes but the message has {len(view)}")
    try:
        tag = Tag(tag)
    except ValueError:
        raise DecodeError(f"unknown message tag {tag}") from None
    if flags & ~FLAG_MULTIPART:
        raise DecodeError(f"unknown header flags 0x{flags:02x}")
    if reserved != _RESERVED:
        raise DecodeError("the reserved header bytes are not zero")
    return Header(
        signature=bytes(view[0:64]),
        participant_pk=bytes(view[64:96]),
        coordinator_pk=bytes(view[96:128]),
        length=length,
        tag=tag,
        flags=flags,
    )
