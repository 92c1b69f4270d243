"""Multipart messages: split a large payload into chunk messages, and put it back together.

Sizes. ``max_message_size`` limits the *sealed* message, i.e. what travels in one request. A chunk
message spends :data:`HEADER_LENGTH` (136) on its header, :data:`SEAL_OVERHEAD` (48) on the sealed
box and :data:`CHUNK_HEADER_LENGTH` (8) on the chunk header, so each chunk carries
``max_message_size - 192`` payload bytes. (The original subtracted header and seal overhead twice
and so sent 3912-byte messages when 4096 was meant.)

Randomness stays with the caller: the 16-bit message id shared by the chunks of one message is a
parameter.

:class:`Reassembler` is the receiving side. It keeps no clock and does no I/O; the caller feeds it
verified chunk messages, gets the whole message back when the last missing chunk arrives, and
calls :meth:`Reassembler.clear` when a phase ends. Every buffer is bounded by limits given to the
constructor; a chunk that would break a rule or a limit is rejected with :class:`ReassemblyError`
and leaves the reassembler exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xaynet.errors import LocalProtocolError, RemoteProtocolError
from xaynet.message._fields import check_uint
from xaynet.message.header import HEADER_LENGTH, SEAL_OVERHEAD, Tag
from xaynet.message.message import Message
from xaynet.message.payloads import CHUNK_HEADER_LENGTH, Chunk, decode_payload

__all__ = [
    "ORIGINAL_MAX_MESSAGE_SIZE",
    "MIN_MAX_MESSAGE_SIZE",
    "MAX_CHUNKS",
    "chunk_data_size",
    "split",
    "split_message",
    "ReassemblyError",
    "Reassembler",
]

#: The sealed message size limit the original SDKs meant to use. This SDK's participants send
#: up to 1 MiB per request (``xaynet.participant.DEFAULT_MAX_MESSAGE_SIZE``): in a browser
#: every request costs milliseconds (benchmarks/README.md).
ORIGINAL_MAX_MESSAGE_SIZE = 4096
#: The smallest limit that leaves room for one data byte per chunk.
MIN_MAX_MESSAGE_SIZE = HEADER_LENGTH + SEAL_OVERHEAD + CHUNK_HEADER_LENGTH + 1
#: Chunk ids are u16, so a message has at most this many chunks.
MAX_CHUNKS = 2**16

_OVERHEAD = HEADER_LENGTH + SEAL_OVERHEAD + CHUNK_HEADER_LENGTH


def chunk_data_size(max_message_size: int) -> int:
    """Payload bytes one chunk carries when sealed chunk messages are at most this size."""
    if not isinstance(max_message_size, int) or isinstance(max_message_size, bool):
        raise LocalProtocolError("max_message_size must be an int")
    if max_message_size < MIN_MAX_MESSAGE_SIZE:
        raise LocalProtocolError(
            f"max_message_size must be at least {MIN_MAX_MESSAGE_SIZE}, got {max_message_size}"
        )
    return max_message_size - _OVERHEAD


def split(payload: bytes, *, max_message_size: int, message_id: int) -> list[Chunk]:
    """Cut encoded payload bytes into chunks whose sealed messages fit ``max_message_size``.

    Chunks are numbered from 0 and the last one is flagged. Always returns at least one chunk;
    use :func:`split_message` to chunk only when needed.
    """
    size = chunk_data_size(max_message_size)
    check_uint(message_id, "message_id", 16)
    if not payload:
        raise LocalProtocolError("cannot split an empty payload")
    count = -(-len(payload) // size)
    if count > MAX_CHUNKS:
        raise LocalProtocolError(
            f"a {len(payload)}-byte payload needs {count} chunks of {size} bytes; "
            f"at most {MAX_CHUNKS} fit the u16 chunk id: raise max_message_size"
        )
    return [
        Chunk(i, message_id, i == count - 1, payload[i * size : (i + 1) * size])
        for i in range(count)
    ]


def split_message(
    message: Message, *, max_message_size: int | None, message_id: int
) -> list[Message]:
    """The messages to send for ``message``: itself if it fits, else one per chunk.

    ``max_message_size`` is the sealed size limit (``None``: unlimited). Chunk messages keep the
    participant and coordinator keys and carry the tag of ``message``.
    """
    if message.is_multipart:
        raise LocalProtocolError("the message is already a chunk")
    check_uint(message_id, "message_id", 16)
    if max_message_size is None:
        return [message]
    chunk_data_size(max_message_size)  # validate the limit even when no split is needed
    if message.byte_length + SEAL_OVERHEAD <= max_message_size:
        return [message]
    chunks = split(
        message.payload.to_bytes(), max_message_size=max_message_size, message_id=message_id
    )
    return [
        Message(message.participant_pk, message.coordinator_pk, chunk, message.tag)
        for chunk in chunks
    ]


class ReassemblyError(RemoteProtocolError):
    """A chunk that breaks the multipart rules or a reassembly limit; it was not stored.

    ``reason`` is a stable machine-readable word:

    * ``tag_mismatch`` / ``coordinator_mismatch`` -- differs from the first chunk of the message;
    * ``conflicting_chunk`` -- a chunk id seen before, with other data or another last flag;
    * ``bad_last_chunk`` -- a chunk past the last one, or a second, different last chunk;
    * ``too_many_chunks`` -- chunk id at or beyond ``max_chunks_per_message``;
    * ``participant_messages`` -- too many partial messages from one participant;
    * ``participant_bytes`` -- too many buffered bytes from one participant;
    * ``total_bytes`` -- too many buffered bytes overall.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class _Partial:
    tag: Tag
    coordinator_pk: bytes
    chunks: dict[int, bytes] = field(default_factory=dict)
    last_id: int | None = None
    max_id: int = -1
    size: int = 0


@dataclass(slots=True)
class _Usage:
    messages: int = 0
    size: int = 0


class Reassembler:
    """Buffers chunks per (participant key, message id) and returns whole messages.

    Feed it only chunk messages whose signature and coordinator key the caller has checked: each
    chunk is signed on its own, the reassembled message carries no signature of its own.

    Limits (all required, all positive):

    * ``max_bytes_per_participant`` -- chunk data buffered for one participant; must admit the
      largest legitimate payload;
    * ``max_messages_per_participant`` -- partial messages of one participant at a time;
    * ``max_chunks_per_message`` -- chunk ids accepted are ``0 .. max_chunks_per_message - 1``;
    * ``max_total_bytes`` -- chunk data buffered overall.

    Byte counts are of chunk data, which is what the buffers hold.
    """

    def __init__(
        self,
        *,
        max_bytes_per_participant: int,
        max_messages_per_participant: int,
        max_chunks_per_message: int,
        max_total_bytes: int,
    ) -> None:
        for name, value in (
            ("max_bytes_per_participant", max_bytes_per_participant),
            ("max_messages_per_participant", max_messages_per_participant),
            ("max_chunks_per_message", max_chunks_per_message),
            ("max_total_bytes", max_total_bytes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LocalProtocolError(f"{name} must be a positive int, got {value!r}")
        self.max_bytes_per_participant = max_bytes_per_participant
        self.max_messages_per_participant = max_messages_per_participant
        self.max_chunks_per_message = min(max_chunks_per_message, MAX_CHUNKS)
        self.max_total_bytes = max_total_bytes
        self._partials: dict[tuple[bytes, int], _Partial] = {}
        self._usage: dict[bytes, _Usage] = {}
        self._total = 0

    # -- metrics -------------------------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Chunk data held over all partial messages."""
        return self._total

    @property
    def partial_messages(self) -> int:
        """How many messages have some but not all of their chunks."""
        return len(self._partials)

    def participant_buffered_bytes(self, participant_pk: bytes) -> int:
        """Chunk data held for one participant."""
        usage = self._usage.get(bytes(participant_pk))
        return 0 if usage is None else usage.size

    # -- feeding -------------------------------------------------------------------------------

    def add(self, message: Message) -> Message | None:
        """Take one verified message; return a whole message when one is complete.

        A message that is not a chunk is returned unchanged. For a chunk, returns ``None`` while
        chunks are missing, and the reassembled message (payload parsed according to the tag)
        when this chunk completes it. Resending a chunk already held (same id, data and last
        flag) is accepted and changes nothing.

        Raises :class:`ReassemblyError` for a chunk that breaks a rule or a limit (nothing is
        stored), and :class:`DecodeError` if the completed payload does not parse (the partial
        message is dropped).

        A completed message frees its (participant, message id) slot, so a chunk resent after
        completion starts a new partial message; it counts against the limits until
        :meth:`clear`.
        """
        chunk = message.payload
        if not isinstance(chunk, Chunk):
            return message
        pk = message.participant_pk
        key = (pk, chunk.message_id)
        partial = self._partials.get(key)
        if partial is not None:
            self._check_consistent(partial, message, chunk)
            if chunk.chunk_id in partial.chunks:
                return None  # an identical resend (conflicts were rejected above)
        if chunk.chunk_id >= self.max_chunks_per_message:
            raise ReassemblyError(
                "too_many_chunks",
                f"chunk id {chunk.chunk_id} >= the limit of {self.max_chunks_per_message} chunks",
            )
        usage = self._usage.get(pk)
        size = len(chunk.data)
        if (
            partial is None
            and usage is not None
            and usage.messages >= self.max_messages_per_participant
        ):
            raise ReassemblyError(
                "participant_messages",
                f"participant already has {usage.messages} partial messages",
            )
        if (0 if usage is None else usage.size) + size > self.max_bytes_per_participant:
            raise ReassemblyError(
                "participant_bytes",
                f"chunk would exceed {self.max_bytes_per_participant} bytes for the participant",
            )
        if self._total + size > self.max_total_bytes:
            raise ReassemblyError(
                "total_bytes", f"chunk would exceed {self.max_total_bytes} buffered bytes"
            )

        # All checks passed: from here on nothing raises before the state is consistent.
        if usage is None:
            usage = self._usage[pk] = _Usage()
        if partial is None:
            partial = self._partials[key] = _Partial(message.tag, message.coordinator_pk)
            usage.messages += 1
        partial.chunks[chunk.chunk_id] = chunk.data
        partial.max_id = max(partial.max_id, chunk.chunk_id)
        if chunk.last:
            partial.last_id = chunk.chunk_id
        partial.size += size
        usage.size += size
        self._total += size

        if partial.last_id is None or len(partial.chunks) != partial.last_id + 1:
            return None
        self._drop(key)
        data = b"".join(partial.chunks[i] for i in range(partial.last_id + 1))
        payload = decode_payload(partial.tag, data)
        return Message(pk, partial.coordinator_pk, payload, partial.tag)

    def _check_consistent(self, partial: _Partial, message: Message, chunk: Chunk) -> None:
        if message.tag is not partial.tag:
            raise ReassemblyError(
                "tag_mismatch",
                f"chunk tag {message.tag.name} but the message is {partial.tag.name}",
            )
        if message.coordinator_pk != partial.coordinator_pk:
            raise ReassemblyError(
                "coordinator_mismatch", "chunk names another coordinator key than its message"
            )
        held = partial.chunks.get(chunk.chunk_id)
        if held is not None:
            if held != chunk.data or chunk.last != (partial.last_id == chunk.chunk_id):
                raise ReassemblyError(
                    "conflicting_chunk", f"chunk {chunk.chunk_id} was received with other content"
                )
            return
        if partial.last_id is not None and (chunk.last or chunk.chunk_id > partial.last_id):
            raise ReassemblyError(
                "bad_last_chunk", f"chunk {chunk.chunk_id} after last chunk {partial.last_id}"
            )
        if chunk.last and chunk.chunk_id < partial.max_id:
            raise ReassemblyError(
                "bad_last_chunk",
                f"last chunk {chunk.chunk_id} but chunk {partial.max_id} was received",
            )

    # -- dropping ------------------------------------------------------------------------------

    def discard(self, participant_pk: bytes) -> int:
        """Drop the partial messages of one participant; return how many were dropped."""
        pk = bytes(participant_pk)
        keys = [key for key in self._partials if key[0] == pk]
        for key in keys:
            self._drop(key)
        return len(keys)

    def clear(self) -> int:
        """Drop every partial message (at the end of a phase); return how many were dropped."""
        dropped = len(self._partials)
        self._partials.clear()
        self._usage.clear()
        self._total = 0
        return dropped

    def _drop(self, key: tuple[bytes, int]) -> None:
        partial = self._partials.pop(key)
        usage = self._usage[key[0]]
        usage.messages -= 1
        usage.size -= partial.size
        if usage.messages == 0:
            del self._usage[key[0]]
        self._total -= partial.size
