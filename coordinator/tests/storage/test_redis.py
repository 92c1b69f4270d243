"""What only the Redis backend has: the key layout under the prefix, one stored copy per mask,
isolation between prefixes, corrupted data, an unreachable server, the packaged scripts."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from uuid import uuid4

import anyio
import pytest
import redis

from xaynet_coordinator.storage.base import Checkpoint, StorageError
from xaynet_coordinator.storage.redis import RedisStorage

from .support import REDIS_URL, delete_prefix, keys_under

pytestmark = pytest.mark.anyio

SCRIPTS = {"add_update.lua", "add_mask_vote.lua", "best_masks.lua", "save_checkpoint.lua"}


def new_pk() -> bytes:
    return os.urandom(32)


@pytest.fixture
async def store(redis_prefix: str) -> AsyncIterator[RedisStorage]:
    storage = RedisStorage(REDIS_URL, redis_prefix)
    await storage.connect()
    yield storage
    await storage.close()


async def populate(storage: RedisStorage, summers: list[bytes]) -> None:
    """Write every kind of key a round has."""
    for summer in summers:
        assert await storage.add_summer(summer, new_pk())
    for _ in range(3):
        seeds = {s: os.urandom(80) for s in summers}
        assert await storage.add_update(new_pk(), seeds, os.urandom(100)) is None
    await storage.save_checkpoint(Checkpoint(round_id=1, aggregate=b"aggregate", count=1))
    assert await storage.add_mask_vote(summers[0], b"mask") is None
    await storage.save_state(b"state")
    await storage.set_latest_model_id("1_" + "00" * 32)


def named(prefix: str, *names: str) -> set[bytes]:
    return {f"{prefix}{name}".encode() for name in names}


async def test_every_key_lives_under_the_prefix(
    store: RedisStorage, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    summers = [new_pk() for _ in range(3)]
    await populate(store, summers)

    assert keys_under(raw_redis, redis_prefix) == named(
        redis_prefix,
        "state",
        "latest_model_id",
        "sum_dict",
        "update_participants",
        "mask_submitted",
        "masks",
        "mask_votes",
        "journal",
        "checkpoint",
        *(f"seeds:{summer.hex()}" for summer in summers),
    )
    # the per-summer keys are the only ones with data-dependent names: none escaped the prefix
    for summer in summers:
        anywhere = set(raw_redis.scan_iter(match=f"*{summer.hex()}*", count=1000))
        assert anywhere == named(redis_prefix, f"seeds:{summer.hex()}")


async def test_one_stored_copy_per_distinct_mask(
    store: RedisStorage, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    summers = [new_pk() for _ in range(4)]
    for summer in summers:
        await store.add_summer(summer, new_pk())
    popular, other = os.urandom(200_000), os.urandom(200_000)
    for summer, mask in zip(summers, [popular, popular, other, popular], strict=True):
        assert await store.add_mask_vote(summer, mask) is None

    masks_key, votes_key = f"{redis_prefix}masks", f"{redis_prefix}mask_votes"
    digest = hashlib.sha256(popular).digest()
    assert raw_redis.hlen(masks_key) == 2
    assert raw_redis.hget(masks_key, digest) == popular
    assert raw_redis.zscore(votes_key, digest) == 3
    # the sorted set holds digests, not megabyte-sized members
    assert all(len(member) == 32 for member in raw_redis.zrange(votes_key, 0, -1))


async def test_delete_round_leaves_only_state_and_model_id(
    store: RedisStorage, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    await populate(store, [new_pk() for _ in range(5)])
    await store.delete_round()
    assert keys_under(raw_redis, redis_prefix) == named(redis_prefix, "state", "latest_model_id")


async def test_prefixes_isolate_storages(
    store: RedisStorage, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    other_prefix = f"xaynet-test:{uuid4().hex}:"
    other = RedisStorage(REDIS_URL, other_prefix)
    try:
        summers = [new_pk() for _ in range(2)]
        await populate(store, summers)
        before = {key: raw_redis.dump(key) for key in keys_under(raw_redis, redis_prefix)}

        assert await other.load_state() is None
        assert await other.latest_model_id() is None
        assert await other.sum_dict() == {}
        assert await other.seed_dict_column(summers[0]) == {}
        assert await other.update_count() == 0
        assert await other.journal() == []
        assert await other.load_checkpoint() is None
        assert await other.distinct_masks() == 0
        # a summer of the first storage is unknown to the second
        assert await other.add_mask_vote(summers[0], b"mask") is not None

        await other.add_summer(summers[0], new_pk())
        await other.save_state(b"other state")
        await other.delete_round()

        after = {key: raw_redis.dump(key) for key in keys_under(raw_redis, redis_prefix)}
        assert after == before
        assert await store.load_state() == b"state"
        assert len(await store.sum_dict()) == 2
    finally:
        await other.close()
        delete_prefix(raw_redis, other_prefix)


async def test_add_update_refuses_a_corrupted_column_and_writes_nothing(
    store: RedisStorage, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    summers = [new_pk() for _ in range(2)]
    for summer in summers:
        await store.add_summer(summer, new_pk())
    updater = new_pk()
    # a seed under an updater that never submitted: only possible if someone else wrote it
    raw_redis.hset(f"{redis_prefix}seeds:{summers[1].hex()}", updater, b"stray")

    with pytest.raises(StorageError, match="corrupted"):
        await store.add_update(updater, {s: os.urandom(80) for s in summers}, b"entry")
    assert await store.update_count() == 0
    assert await store.journal() == []
    assert await store.seed_dict_column(summers[0]) == {}
    assert await store.seed_dict_column(summers[1]) == {updater: b"stray"}


async def test_incomplete_checkpoint_is_reported(
    store: RedisStorage, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    raw_redis.hset(f"{redis_prefix}checkpoint", "count", "3")
    with pytest.raises(StorageError, match="incomplete"):
        await store.load_checkpoint()


async def test_scripts_are_packaged() -> None:
    files = resources.files("xaynet_coordinator.storage")
    present = {entry.name for entry in files.iterdir() if entry.name.endswith(".lua")}
    assert present == SCRIPTS


def test_empty_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="key_prefix"):
        RedisStorage(REDIS_URL, "")


# -- an unreachable server ------------------------------------------------------------------------

DOWN_URL = "redis://:hunter2-secret@127.0.0.1:1/0"

OPERATIONS: dict[str, Callable[[RedisStorage], Awaitable[object]]] = {
    "connect": lambda s: s.connect(),
    "save_state": lambda s: s.save_state(b"x"),
    "load_state": lambda s: s.load_state(),
    "add_summer": lambda s: s.add_summer(new_pk(), new_pk()),
    "sum_dict": lambda s: s.sum_dict(),
    "add_update": lambda s: s.add_update(new_pk(), {new_pk(): b"s" * 80}, b"entry"),
    "seed_dict_column": lambda s: s.seed_dict_column(new_pk()),
    "update_count": lambda s: s.update_count(),
    "add_mask_vote": lambda s: s.add_mask_vote(new_pk(), b"mask"),
    "best_masks": lambda s: s.best_masks(),
    "distinct_masks": lambda s: s.distinct_masks(),
    "delete_round": lambda s: s.delete_round(),
    "journal": lambda s: s.journal(),
    "save_checkpoint": lambda s: s.save_checkpoint(Checkpoint(1, b"a", 0)),
    "load_checkpoint": lambda s: s.load_checkpoint(),
    "set_latest_model_id": lambda s: s.set_latest_model_id("1_" + "00" * 32),
    "latest_model_id": lambda s: s.latest_model_id(),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_unreachable_server_raises_storage_error(operation: str) -> None:
    storage = RedisStorage(DOWN_URL, "xaynet-test:down:")
    try:
        with pytest.raises(StorageError) as caught:
            await OPERATIONS[operation](storage)
    finally:
        await storage.close()
    message = str(caught.value)
    assert operation in message
    assert "127.0.0.1:1" in message
    assert "hunter2" not in message  # the URL's password never reaches a log line


async def test_unreachable_server_ping_is_false() -> None:
    storage = RedisStorage(DOWN_URL, "xaynet-test:down:")
    try:
        assert await storage.ping() is False
    finally:
        await storage.close()


async def test_close_releases_the_connections(redis_prefix: str, raw_redis: redis.Redis) -> None:
    name = f"xaynet-test-{uuid4().hex}"
    storage = RedisStorage(REDIS_URL, redis_prefix, client_name=name)

    def connections() -> int:
        return sum(1 for client in raw_redis.client_list() if client.get("name") == name)

    await storage.connect()
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(storage.update_count)
    assert connections() >= 1
    await storage.close()
    with anyio.fail_after(5):
        while connections():  # the server notices closed sockets asynchronously
            await anyio.sleep(0.01)
