"""The local seed dictionary an updater sends: its mask seed sealed to every summer.

Wire layout::

    total length u32 BE (counts its own 4 bytes) || k * (summer Ed25519 pk 32 || sealed seed 80)

A sealed seed is the 32-byte mask seed in a sealed box (+48) to the summer's ephemeral key.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from xaynet.errors import DecodeError, LocalProtocolError
from xaynet.message._fields import set_fixed_bytes
from xaynet.message.header import PUBLIC_KEY_LENGTH

__all__ = ["SEALED_SEED_LENGTH", "SEED_DICT_ENTRY_LENGTH", "LocalSeedDict"]

#: Bytes of a mask seed (32) in a sealed box (+48).
SEALED_SEED_LENGTH = 80
#: Bytes of one entry: summer public key and sealed seed.
SEED_DICT_ENTRY_LENGTH = PUBLIC_KEY_LENGTH + SEALED_SEED_LENGTH

_U32 = struct.Struct(">I")
_MAX_ENTRIES = (2**32 - 1 - 4) // SEED_DICT_ENTRY_LENGTH


@dataclass(frozen=True, slots=True)
class _Entry:
    summer_pk: bytes
    sealed_seed: bytes

    def __post_init__(self) -> None:
        set_fixed_bytes(self, "summer_pk", PUBLIC_KEY_LENGTH)
        set_fixed_bytes(self, "sealed_seed", SEALED_SEED_LENGTH)


@dataclass(frozen=True, slots=True, init=False)
class LocalSeedDict(Mapping[bytes, bytes]):
    """An immutable mapping summer public key -> sealed seed, in the order given.

    Equality and hashing follow the encoding: two dictionaries with the same entries in a
    different order are different values (they are different bytes on the wire, and a message
    is signed as bytes).
    """

    _entries: tuple[tuple[bytes, bytes], ...]
    _index: dict[bytes, bytes] = field(compare=False, hash=False, repr=False)

    def __init__(self, entries: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]] = ()) -> None:
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        checked: list[tuple[bytes, bytes]] = []
        seen: set[bytes] = set()
        for pair in pairs:
            try:
                summer_pk, sealed_seed = pair
            except (TypeError, ValueError):
                raise LocalProtocolError(
                    "seed dict entries are (summer_pk, sealed_seed) pairs"
                ) from None
            entry = _Entry(summer_pk, sealed_seed)
            if entry.summer_pk in seen:
                raise LocalProtocolError("duplicate summer public key in the seed dict")
            seen.add(entry.summer_pk)
            checked.append((entry.summer_pk, entry.sealed_seed))
        if len(checked) > _MAX_ENTRIES:
            raise LocalProtocolError("too many seed dict entries for the u32 length field")
        object.__setattr__(self, "_entries", tuple(checked))
        object.__setattr__(self, "_index", dict(checked))

    def __getitem__(self, summer_pk: bytes) -> bytes:
        return self._index[summer_pk]

    def __iter__(self) -> Iterator[bytes]:
        return (pk for pk, _ in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, summer_pk: object) -> bool:
        return summer_pk in self._index

    def __repr__(self) -> str:
        return f"LocalSeedDict(<{len(self._entries)} entries>)"

    @property
    def byte_length(self) -> int:
        return 4 + SEED_DICT_ENTRY_LENGTH * len(self._entries)

    def to_bytes(self) -> bytes:
        parts = [_U32.pack(self.byte_length)]
        for pk, sealed_seed in self._entries:
            parts.append(pk)
            parts.append(sealed_seed)
        return b"".join(parts)

    @classmethod
    def decode(
        cls, buffer: bytes | bytearray | memoryview, offset: int = 0
    ) -> tuple[LocalSeedDict, int]:
        """Parse a dictionary at ``offset``; return it and the offset just after it."""
        view = memoryview(buffer)
        if len(view) - offset < 4:
            raise DecodeError("truncated seed dict length")
        (total,) = _U32.unpack_from(view, offset)
        if total < 4 or (total - 4) % SEED_DICT_ENTRY_LENGTH:
            raise DecodeError(f"seed dict length {total} is not 4 + a whole number of entries")
        end = offset + total
        if end > len(view):
            raise DecodeError(
                f"seed dict announces {total} bytes but only {len(view) - offset} remain"
            )
        entries: list[tuple[bytes, bytes]] = []
        seen: set[bytes] = set()
        for start in range(offset + 4, end, SEED_DICT_ENTRY_LENGTH):
            pk = bytes(view[start : start + PUBLIC_KEY_LENGTH])
            if pk in seen:
                raise DecodeError("duplicate summer public key in the seed dict")
            seen.add(pk)
            sealed_seed = bytes(view[start + PUBLIC_KEY_LENGTH : start + SEED_DICT_ENTRY_LENGTH])
            entries.append((pk, sealed_seed))
        return cls(entries), end

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> LocalSeedDict:
        """Parse exactly one dictionary; trailing bytes are an error."""
        seed_dict, end = cls.decode(data)
        if end != len(data):
            raise DecodeError(f"{len(data) - end} trailing bytes after the seed dict")
        return seed_dict
