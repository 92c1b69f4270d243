"""Fixtures for the storage tests: the backends under test and a private key prefix on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import cache
from uuid import uuid4

import pytest
import redis
from redis.exceptions import RedisError

from xaynet_coordinator.storage.base import Storage
from xaynet_coordinator.storage.memory import MemoryStorage
from xaynet_coordinator.storage.redis import RedisStorage

from .support import REDIS_URL, delete_prefix


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@cache
def _redis_unreachable() -> str | None:
    """Why Redis cannot be used, or None (asked once per session)."""
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except (RedisError, OSError) as exc:
        return f"Redis at {REDIS_URL} is unreachable (set REDIS_URL): {exc}"
    return None


@pytest.fixture
def raw_redis() -> Iterator[redis.Redis]:
    """A plain synchronous client, to look at the keys a storage wrote."""
    reason = _redis_unreachable()
    if reason is not None:
        pytest.skip(reason)
    with redis.Redis.from_url(REDIS_URL) as client:
        yield client


@pytest.fixture
def redis_prefix(raw_redis: redis.Redis) -> Iterator[str]:
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    prefix = f"xaynet-test:{uuid4().hex}:"
    yield prefix
    delete_prefix(raw_redis, prefix)


@pytest.fixture(params=["memory", "redis"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    """Each backend in turn, connected and empty."""
    backend: Storage
    if request.param == "memory":
        backend = MemoryStorage()
    else:
        prefix: str = request.getfixturevalue("redis_prefix")
        backend = RedisStorage(REDIS_URL, prefix)
    await backend.connect()
    yield backend
    await backend.close()
