from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from message_strategies import COORDINATOR_PK, PK, mask_object, seed_dict

from xaynet import crypto
from xaynet.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from xaynet.message import (
    MIN_MAX_MESSAGE_SIZE,
    ORIGINAL_MAX_MESSAGE_SIZE,
    SEAL_OVERHEAD,
    Chunk,
    Message,
    Reassembler,
    ReassemblyError,
    Sum,
    Sum2,
    Tag,
    Update,
    chunk_data_size,
    open_message,
    seal_message,
    split,
    split_message,
)

SIG = b"\x01" * 64
OTHER_PK = b"\x09" * 32


def big_update(n: int = 2000, k: int = 3, pk: bytes = PK) -> Message:
    return Message(pk, COORDINATOR_PK, Update(SIG, SIG, mask_object(n), seed_dict(k)))


def reassembler(**limits: int) -> Reassembler:
    values = {
        "max_bytes_per_participant": 10**6,
        "max_messages_per_participant": 4,
        "max_chunks_per_message": 1000,
        "max_total_bytes": 10**7,
    }
    values.update(limits)
    return Reassembler(**values)


def chunk_message(
    chunk_id: int,
    data: bytes,
    *,
    last: bool = False,
    message_id: int = 7,
    pk: bytes = PK,
    coordinator_pk: bytes = COORDINATOR_PK,
    tag: Tag = Tag.UPDATE,
) -> Message:
    return Message(pk, coordinator_pk, Chunk(chunk_id, message_id, last, data), tag)


def state(r: Reassembler) -> tuple[int, int, int, int]:
    return (
        r.buffered_bytes,
        r.partial_messages,
        r.participant_buffered_bytes(PK),
        r.participant_buffered_bytes(OTHER_PK),
    )


# -- sizes -------------------------------------------------------------------------------------


def test_chunk_data_size() -> None:
    assert chunk_data_size(ORIGINAL_MAX_MESSAGE_SIZE) == 4096 - 136 - 48 - 8 == 3904
    # the original's setting of 3912 gave 3720 data bytes per chunk
    assert chunk_data_size(3912) == 3720
    assert MIN_MAX_MESSAGE_SIZE == 193
    assert chunk_data_size(MIN_MAX_MESSAGE_SIZE) == 1


@pytest.mark.parametrize("size", [0, 192, -1, 4096.0, True, None])
def test_bad_max_message_size(size: object) -> None:
    with pytest.raises(LocalProtocolError):
        chunk_data_size(size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload_size", "max_message_size", "count"),
    [
        (386_082, 3912, 104),  # spec 4.4: Keras example with the original's setting
        (6_001_270, 3912, 1614),  # spec 4.4: n = 10^6, k = 10
        (386_082, 4096, 99),
        (3904, 4096, 1),
        (3905, 4096, 2),
    ],
)
def test_chunk_counts(payload_size: int, max_message_size: int, count: int) -> None:
    chunks = split(b"\7" * payload_size, max_message_size=max_message_size, message_id=1)
    assert len(chunks) == count


# -- split -------------------------------------------------------------------------------------


@given(
    payload=st.binary(min_size=1, max_size=3000),
    max_size=st.integers(MIN_MAX_MESSAGE_SIZE, 800),
    message_id=st.integers(0, 2**16 - 1),
)
def test_split(payload: bytes, max_size: int, message_id: int) -> None:
    chunks = split(payload, max_message_size=max_size, message_id=message_id)
    assert b"".join(c.data for c in chunks) == payload
    assert [c.chunk_id for c in chunks] == list(range(len(chunks)))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert {c.message_id for c in chunks} == {message_id}
    for c in chunks:
        sealed_size = Message(PK, COORDINATOR_PK, c, Tag.SUM).byte_length + SEAL_OVERHEAD
        assert sealed_size <= max_size
        if not c.last:
            assert sealed_size == max_size  # no wasted room


def test_split_rejects() -> None:
    with pytest.raises(LocalProtocolError, match="empty"):
        split(b"", max_message_size=4096, message_id=0)
    with pytest.raises(LocalProtocolError, match="message_id"):
        split(b"x", max_message_size=4096, message_id=2**16)
    # 2^16 chunks of one byte fit, one more does not
    assert len(split(b"x" * 2**16, max_message_size=193, message_id=0)) == 2**16
    with pytest.raises(LocalProtocolError, match="chunks"):
        split(b"x" * (2**16 + 1), max_message_size=193, message_id=0)


def test_split_message_only_when_needed() -> None:
    small = Message(PK, COORDINATOR_PK, Sum(SIG, b"\2" * 32))
    assert split_message(small, max_message_size=280, message_id=1) == [small]
    assert split_message(small, max_message_size=None, message_id=1) == [small]
    parts = split_message(small, max_message_size=279, message_id=1)
    assert len(parts) == 2
    assert all(p.tag is Tag.SUM and p.is_multipart for p in parts)


def test_split_message_rejects() -> None:
    small = Message(PK, COORDINATOR_PK, Sum(SIG, b"\2" * 32))
    with pytest.raises(LocalProtocolError):
        split_message(small, max_message_size=100, message_id=1)
    with pytest.raises(LocalProtocolError):
        split_message(small, max_message_size=4096, message_id=-1)
    chunk = chunk_message(0, b"x", last=True)
    with pytest.raises(LocalProtocolError, match="already"):
        split_message(chunk, max_message_size=4096, message_id=1)


def test_split_message_keeps_keys_and_tag() -> None:
    message = big_update()
    parts = split_message(message, max_message_size=1000, message_id=42)
    assert len(parts) > 10
    for p in parts:
        assert (p.participant_pk, p.coordinator_pk, p.tag) == (PK, COORDINATOR_PK, Tag.UPDATE)
        assert p.byte_length + SEAL_OVERHEAD <= 1000
    joined = b"".join(p.payload.data for p in parts if isinstance(p.payload, Chunk))
    assert joined == message.payload.to_bytes()


# -- reassembly --------------------------------------------------------------------------------


@settings(max_examples=50)
@given(order=st.permutations(range(11)), duplicate=st.sampled_from([None, 0, 5, 10]))
def test_reassembles_in_any_order(order: list[int], duplicate: int | None) -> None:
    message = big_update(n=300)
    parts = split_message(message, max_message_size=400, message_id=3)
    assert len(parts) == 11
    r = reassembler()
    sequence = [parts[i] for i in order]
    # (a resend of the completing chunk would start a new partial message: not tested here)
    if duplicate is not None and order.index(duplicate) < len(order) - 1:
        sequence.insert(order.index(duplicate) + 1, parts[duplicate])
    results = [r.add(p) for p in sequence]
    assert results[-1] == message
    assert results[:-1] == [None] * (len(results) - 1)
    assert state(r) == (0, 0, 0, 0)


def test_non_chunks_pass_through() -> None:
    r = reassembler()
    message = Message(PK, COORDINATOR_PK, Sum(SIG, b"\2" * 32))
    assert r.add(message) is message
    assert state(r) == (0, 0, 0, 0)


def test_single_chunk_message() -> None:
    sum2 = Sum2(SIG, mask_object(3))
    r = reassembler()
    result = r.add(chunk_message(0, sum2.to_bytes(), last=True, tag=Tag.SUM2))
    assert result == Message(PK, COORDINATOR_PK, sum2)


def test_metrics_and_identical_resend() -> None:
    r = reassembler()
    assert r.add(chunk_message(0, b"abc")) is None
    assert r.add(chunk_message(2, b"de", message_id=8)) is None
    assert r.add(chunk_message(1, b"f", pk=OTHER_PK)) is None
    assert state(r) == (6, 3, 5, 1)
    assert r.add(chunk_message(0, b"abc")) is None  # a retried send
    assert state(r) == (6, 3, 5, 1)


def test_participants_and_message_ids_are_independent() -> None:
    sum_a = Sum(SIG, b"\xaa" * 32).to_bytes()
    sum_b = Sum(b"\2" * 64, b"\xbb" * 32).to_bytes()
    r = reassembler()
    assert r.add(chunk_message(0, sum_a[:50], tag=Tag.SUM)) is None
    assert r.add(chunk_message(0, sum_b[:50], pk=OTHER_PK, tag=Tag.SUM)) is None
    assert r.add(chunk_message(0, sum_b[:50], message_id=8, tag=Tag.SUM)) is None
    done_b = r.add(chunk_message(1, sum_b[50:], last=True, pk=OTHER_PK, tag=Tag.SUM))
    assert done_b == Message(OTHER_PK, COORDINATOR_PK, Sum.from_bytes(sum_b))
    done_a = r.add(chunk_message(1, sum_a[50:], last=True, tag=Tag.SUM))
    assert done_a == Message(PK, COORDINATOR_PK, Sum.from_bytes(sum_a))
    assert r.partial_messages == 1
    # the message id is free again once complete
    assert r.add(chunk_message(1, sum_a[50:], last=True, tag=Tag.SUM)) is None


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        (chunk_message(0, b"a"), chunk_message(1, b"b", tag=Tag.SUM2), "tag_mismatch"),
        (
            chunk_message(0, b"a"),
            chunk_message(1, b"b", coordinator_pk=OTHER_PK),
            "coordinator_mismatch",
        ),
        (chunk_message(0, b"a"), chunk_message(0, b"b"), "conflicting_chunk"),
        (chunk_message(0, b"a"), chunk_message(0, b"a", last=True), "conflicting_chunk"),
        (chunk_message(2, b"a", last=True), chunk_message(2, b"a"), "conflicting_chunk"),
        (chunk_message(2, b"a", last=True), chunk_message(3, b"b"), "bad_last_chunk"),
        (chunk_message(2, b"a", last=True), chunk_message(1, b"b", last=True), "bad_last_chunk"),
        (chunk_message(3, b"a"), chunk_message(1, b"b", last=True), "bad_last_chunk"),
    ],
)
def test_protocol_violations(first: Message, second: Message, reason: str) -> None:
    r = reassembler()
    assert r.add(first) is None
    before = state(r)
    with pytest.raises(ReassemblyError) as info:
        r.add(second)
    assert info.value.reason == reason
    assert isinstance(info.value, RemoteProtocolError)
    assert state(r) == before


def test_limit_chunks_per_message() -> None:
    r = reassembler(max_chunks_per_message=3)
    assert r.add(chunk_message(2, b"x")) is None
    with pytest.raises(ReassemblyError) as info:
        r.add(chunk_message(3, b"x"))
    assert info.value.reason == "too_many_chunks"
    assert state(r) == (1, 1, 1, 0)


def test_limit_messages_per_participant() -> None:
    r = reassembler(max_messages_per_participant=2)
    r.add(chunk_message(0, b"x", message_id=1))
    r.add(chunk_message(0, b"x", message_id=2))
    r.add(chunk_message(1, b"x", message_id=2))  # an existing message may grow
    before = state(r)
    with pytest.raises(ReassemblyError) as info:
        r.add(chunk_message(0, b"x", message_id=3))
    assert info.value.reason == "participant_messages"
    assert state(r) == before
    r.add(chunk_message(0, b"x", message_id=3, pk=OTHER_PK))  # others are not affected


def test_limit_bytes_per_participant() -> None:
    r = reassembler(max_bytes_per_participant=10)
    r.add(chunk_message(0, b"x" * 6, message_id=1))
    r.add(chunk_message(0, b"x" * 4, message_id=2))  # exactly at the limit
    before = state(r)
    with pytest.raises(ReassemblyError) as info:
        r.add(chunk_message(1, b"x", message_id=1))
    assert info.value.reason == "participant_bytes"
    assert state(r) == before
    r.add(chunk_message(0, b"x" * 10, pk=OTHER_PK))


def test_limit_total_bytes() -> None:
    r = reassembler(max_total_bytes=10)
    r.add(chunk_message(0, b"x" * 6))
    before = state(r)
    with pytest.raises(ReassemblyError) as info:
        r.add(chunk_message(0, b"x" * 5, pk=OTHER_PK))
    assert info.value.reason == "total_bytes"
    assert state(r) == before
    r.add(chunk_message(0, b"x" * 4, pk=OTHER_PK))
    assert r.buffered_bytes == 10


def test_completing_chunk_frees_its_bytes() -> None:
    sum_bytes = Sum(SIG, b"\2" * 32).to_bytes()
    r = reassembler(max_bytes_per_participant=96, max_total_bytes=96)
    r.add(chunk_message(0, sum_bytes[:90], tag=Tag.SUM))
    assert r.add(chunk_message(1, sum_bytes[90:], last=True, tag=Tag.SUM)) is not None
    assert state(r) == (0, 0, 0, 0)


def test_invalid_reassembled_payload_is_dropped() -> None:
    r = reassembler()
    r.add(chunk_message(0, b"x" * 50, tag=Tag.SUM))
    with pytest.raises(DecodeError, match="Sum"):
        r.add(chunk_message(1, b"x" * 40, last=True, tag=Tag.SUM))
    assert state(r) == (0, 0, 0, 0)


def test_clear_and_discard() -> None:
    r = reassembler()
    r.add(chunk_message(0, b"abc", message_id=1))
    r.add(chunk_message(0, b"abc", message_id=2))
    r.add(chunk_message(0, b"abcd", pk=OTHER_PK))
    assert r.discard(PK) == 2
    assert state(r) == (4, 1, 0, 4)
    assert r.discard(PK) == 0
    assert r.clear() == 1
    assert state(r) == (0, 0, 0, 0)
    # usable afterwards
    r.add(chunk_message(0, b"abc", message_id=1))
    assert state(r) == (3, 1, 3, 0)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_bytes_per_participant": 0},
        {"max_messages_per_participant": -1},
        {"max_chunks_per_message": True},
        {"max_total_bytes": 1.5},
    ],
)
def test_bad_limits(limits: dict[str, int]) -> None:
    with pytest.raises(LocalProtocolError):
        reassembler(**limits)


_events = st.tuples(
    st.sampled_from([PK, OTHER_PK]),
    st.integers(0, 2),  # message id
    st.integers(0, 4),  # chunk id
    st.binary(min_size=1, max_size=8),
    st.booleans(),  # last
    st.sampled_from([Tag.SUM, Tag.SUM2]),
)


@given(st.lists(st.one_of(_events, st.just("clear")), max_size=60))
def test_invariants_under_random_traffic(events: list[object]) -> None:
    limits = {
        "max_bytes_per_participant": 20,
        "max_messages_per_participant": 2,
        "max_chunks_per_message": 4,
        "max_total_bytes": 30,
    }
    r = reassembler(**limits)
    for event in events:
        if event == "clear":
            r.clear()
        else:
            pk, mid, cid, data, last, tag = event  # type: ignore[misc]
            before = state(r)
            try:
                r.add(chunk_message(cid, data, last=last, message_id=mid, pk=pk, tag=tag))
            except ReassemblyError:
                assert state(r) == before
            except DecodeError:
                pass  # completed with garbage: dropped
        per_pk = r.participant_buffered_bytes(PK), r.participant_buffered_bytes(OTHER_PK)
        assert r.buffered_bytes == sum(per_pk) <= 30
        assert max(per_pk) <= 20
        assert r.partial_messages <= 4
        assert (r.buffered_bytes == 0) == (r.partial_messages == 0)


# -- end to end --------------------------------------------------------------------------------


def test_sealed_multipart_update_end_to_end(
    participant_key: crypto.SigningKeyPair, round_keys: crypto.EncryptKeyPair
) -> None:
    payload = Update(SIG, SIG, mask_object(1500), seed_dict(4))
    message = Message(participant_key.public, round_keys.public, payload)
    parts = split_message(message, max_message_size=ORIGINAL_MAX_MESSAGE_SIZE, message_id=0xBEEF)
    assert len(parts) == 3
    wire = [seal_message(p.to_bytes(participant_key), round_keys.public) for p in parts]
    assert all(len(w) <= ORIGINAL_MAX_MESSAGE_SIZE for w in wire)
    assert len(wire[0]) == ORIGINAL_MAX_MESSAGE_SIZE
    r = reassembler(max_bytes_per_participant=20_000)
    results = [r.add(Message.from_bytes(open_message(w, round_keys))) for w in reversed(wire)]
    assert results == [None, None, message]
