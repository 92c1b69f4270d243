from __future__ import annotations

import pytest

from participant._fixtures import ROUND_KEYS, make_params, with_role
from xaynet.crypto import EncryptKeyPair
from xaynet.errors import DecryptionError, LocalProtocolError
from xaynet.message import Chunk, Message, Reassembler, open_message
from xaynet.participant import Role, UpdateTask, sealed_requests

PARAMS = make_params(model_length=200)
UPDATER, DECISION = with_role(Role.UPDATE, PARAMS)
SUM_DICT = {bytes([i]) * 32: EncryptKeyPair.from_seed(bytes([i]) * 32).public for i in range(3)}
MESSAGE = UpdateTask(UPDATER, PARAMS, DECISION).update_message(
    [0.001 * i for i in range(200)], mask_seed=bytes(32), sum_dict=SUM_DICT
)


def test_unlimited_gives_one_body() -> None:
    [body] = sealed_requests(MESSAGE, UPDATER, max_message_size=None, message_id=7)
    assert len(body) == MESSAGE.byte_length + 48
    assert Message.from_bytes(open_message(body, ROUND_KEYS)) == MESSAGE


def test_message_that_fits_is_not_chunked() -> None:
    bodies = sealed_requests(
        MESSAGE, UPDATER, max_message_size=MESSAGE.byte_length + 48, message_id=7
    )
    assert len(bodies) == 1


@pytest.mark.parametrize("limit", [300, 1000, 1800])
def test_large_message_is_chunked(limit: int) -> None:
    bodies = sealed_requests(MESSAGE, UPDATER, max_message_size=limit, message_id=513)
    assert len(bodies) > 1
    assert all(len(body) <= limit for body in bodies)
    reassembler = Reassembler(
        max_bytes_per_participant=1 << 20,
        max_messages_per_participant=1,
        max_chunks_per_message=1000,
        max_total_bytes=1 << 20,
    )
    results = []
    for body in bodies:
        part = Message.from_bytes(open_message(body, ROUND_KEYS))
        assert isinstance(part.payload, Chunk)
        assert part.payload.message_id == 513
        results.append(reassembler.add(part))
    assert results[:-1] == [None] * (len(bodies) - 1)
    assert results[-1] == MESSAGE


def test_bodies_are_sealed_to_the_round_key() -> None:
    [body] = sealed_requests(MESSAGE, UPDATER, max_message_size=None, message_id=0)
    with pytest.raises(DecryptionError):
        open_message(body, EncryptKeyPair.from_seed(bytes(32)))


def test_signing_key_must_match() -> None:
    other, _ = with_role(Role.NONE, PARAMS)
    with pytest.raises(LocalProtocolError):
        sealed_requests(MESSAGE, other, max_message_size=None, message_id=0)


@pytest.mark.parametrize(("limit", "message_id"), [(100, 0), (4096, -1), (4096, 2**16)])
def test_bad_limits(limit: int, message_id: int) -> None:
    with pytest.raises(LocalProtocolError):
        sealed_requests(MESSAGE, UPDATER, max_message_size=limit, message_id=message_id)
