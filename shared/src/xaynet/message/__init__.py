"""The wire messages participants send to the coordinator.

A message is a 136-byte signed header and a payload (Sum, Update, Sum2, or a Chunk of one of
them), sealed as a whole to the coordinator's round key. See :mod:`xaynet.message.header` for
the layout and the strictness rules, :mod:`xaynet.message.chunking` for multipart messages.
"""

from __future__ import annotations

from xaynet.message.chunking import (
    MAX_CHUNKS,
    MIN_MAX_MESSAGE_SIZE,
    ORIGINAL_MAX_MESSAGE_SIZE,
    Reassembler,
    ReassemblyError,
    chunk_data_size,
    split,
    split_message,
)
from xaynet.message.header import (
    HEADER_LENGTH,
    MAX_MESSAGE_LENGTH,
    PUBLIC_KEY_LENGTH,
    SEAL_OVERHEAD,
    SIGNATURE_LENGTH,
    Header,
    Tag,
    parse_header,
)
from xaynet.message.message import Message, open_message, seal_message, verify_signature
from xaynet.message.payloads import (
    CHUNK_HEADER_LENGTH,
    SUM_PAYLOAD_LENGTH,
    Chunk,
    Payload,
    Sum,
    Sum2,
    Update,
    decode_payload,
)
from xaynet.message.seed_dict import SEALED_SEED_LENGTH, SEED_DICT_ENTRY_LENGTH, LocalSeedDict

__all__ = [
    # messages
    "Message",
    "Tag",
    "Header",
    "parse_header",
    "verify_signature",
    "seal_message",
    "open_message",
    # payloads
    "Payload",
    "Sum",
    "Update",
    "Sum2",
    "Chunk",
    "decode_payload",
    "LocalSeedDict",
    # multipart
    "split",
    "split_message",
    "chunk_data_size",
    "Reassembler",
    "ReassemblyError",
    # sizes
    "HEADER_LENGTH",
    "SEAL_OVERHEAD",
    "SIGNATURE_LENGTH",
    "PUBLIC_KEY_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "CHUNK_HEADER_LENGTH",
    "SUM_PAYLOAD_LENGTH",
    "SEALED_SEED_LENGTH",
    "SEED_DICT_ENTRY_LENGTH",
    "ORIGINAL_MAX_MESSAGE_SIZE",
    "MIN_MAX_MESSAGE_SIZE",
    "MAX_CHUNKS",
]
