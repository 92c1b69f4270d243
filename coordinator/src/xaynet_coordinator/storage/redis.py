"""The Redis storage backend: round state that survives a coordinator crash.

Every key lives under one prefix, so several coordinators (and unrelated data) can share a Redis
server. Keys, for a prefix ``P``:

============================  ===========  ====================================================
``P state``                   string       the engine's coordinator state blob
``P latest_model_id``         string       id of the newest global model in the model store
``P sum_dict``                hash         summer pk -> ephemeral pk
``P update_participants``     set          updater pks whose update was accepted
``P seeds:<summer pk hex>``   hash         one seed dict column: updater pk -> sealed seed
``P mask_submitted``          set          summer pks that voted
``P masks``                   hash         SHA-256 of a mask -> the mask (one copy per mask)
``P mask_votes``              sorted set   SHA-256 of a mask -> votes
``P journal``                 list         accepted masked models not yet in the checkpoint
``P checkpoint``              hash         ``round_id``, ``count``, ``aggregate``
============================  ===========  ====================================================

The operations that must be atomic are Lua scripts shipped next to this module (they name every
key they touch in KEYS); :meth:`RedisStorage.delete_round` is a WATCH/MULTI transaction because the
seed columns to delete are only known from the sum dict. All redis-py failures surface as
:class:`~xaynet_coordinator.storage.base.StorageError`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from xaynet_coordinator.storage.base import (
    Checkpoint,
    MaskVote,
    Storage,
    StorageError,
    UpdateRejection,
    VoteRejection,
)

__all__ = ["RedisStorage"]

_UPDATE_RESULTS: dict[int, UpdateRejection | None] = {
    0: None,
    -1: UpdateRejection.LENGTH_MISMATCH,
    -2: UpdateRejection.UNKNOWN_SUMMER,
    -3: UpdateRejection.ALREADY_SUBMITTED,
}
_VOTE_RESULTS: dict[int, VoteRejection | None] = {
    0: None,
    -1: VoteRejection.UNKNOWN_SUMMER,
    -2: VoteRejection.ALREADY_SUBMITTED,
}


@cache
def _lua(name: str) -> str:
    """The source of a packaged Lua script (``storage/<name>.lua``)."""
    return (
        resources.files("xaynet_coordinator.storage")
        .joinpath(f"{name}.lua")
        .read_text(encoding="utf-8")
    )


class RedisStorage:
    """:class:`~xaynet_coordinator.storage.base.Storage` on a Redis server.

    ``url`` is a redis-py URL (``redis://``, ``rediss://`` or ``unix://``); ``key_prefix`` must
    not be empty. Connections come from one pool, opened lazily; :meth:`connect` checks that the
    server answers and loads the scripts, :meth:`close` closes the pooled connections.
    """

    def __init__(
        self,
        url: str,
        key_prefix: str,
        *,
        socket_timeout: float = 10.0,
        max_connections: int | None = None,
        client_name: str | None = "xaynet-coordinator",
    ) -> None:
        if not key_prefix:
            raise ValueError("key_prefix must not be empty: every key lives under it")
        self._prefix = key_prefix
        self._pool: aioredis.ConnectionPool = aioredis.ConnectionPool.from_url(
            url,
            decode_responses=False,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            max_connections=max_connections,
            client_name=client_name,  # shows in CLIENT LIST, for operators of a shared server
            # never re-send a command by itself: a script that timed out may have run, and
            # running add_update twice would answer "already submitted" to an accepted update
            retry=Retry(NoBackoff(), 0),
        )
        self._client = aioredis.Redis(connection_pool=self._pool)
        self._where = _describe(self._pool.connection_kwargs)

        self._k_state = self._key("state")
        self._k_latest_model_id = self._key("latest_model_id")
        self._k_sum_dict = self._key("sum_dict")
        self._k_update_participants = self._key("update_participants")
        self._k_mask_submitted = self._key("mask_submitted")
        self._k_masks = self._key("masks")
        self._k_mask_votes = self._key("mask_votes")
        self._k_journal = self._key("journal")
        self._k_checkpoint = self._key("checkpoint")

        self._add_update = self._client.register_script(_lua("add_update"))
        self._add_mask_vote = self._client.register_script(_lua("add_mask_vote"))
        self._best_masks = self._client.register_script(_lua("best_masks"))
        self._save_checkpoint = self._client.register_script(_lua("save_checkpoint"))

    @property
    def key_prefix(self) -> str:
        return self._prefix

    def _key(self, name: str) -> bytes:
        return f"{self._prefix}{name}".encode()

    def _column(self, summer_pk: bytes) -> bytes:
        return self._key(f"seeds:{summer_pk.hex()}")

    def _round_keys(self) -> list[bytes]:
        """The round keys with fixed names (the seed columns come on top)."""
        return [
            self._k_sum_dict,
            self._k_update_participants,
            self._k_mask_submitted,
            self._k_masks,
            self._k_mask_votes,
            self._k_journal,
            self._k_checkpoint,
        ]

    @contextmanager
    def _failures(self, operation: str) -> Iterator[None]:
        """Turn redis-py errors into StorageError naming the operation and the server."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StorageError(
                f"redis {operation} failed ({self._where}, prefix {self._prefix!r}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    # -- lifecycle and health --------------------------------------------------------------------

    async def connect(self) -> None:
        with self._failures("connect"):
            await self._client.ping()
            # loading now reports an unreachable server or a broken script at start-up;
            # redis-py reloads a script by itself if the server forgets it (restart, FLUSH)
            for script in (
                self._add_update,
                self._add_mask_vote,
                self._best_masks,
                self._save_checkpoint,
            ):
                await self._client.script_load(script.script)

    async def close(self) -> None:
        with self._failures("close"):
            await self._client.aclose()
            await self._pool.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    # -- coordinator state -----------------------------------------------------------------------

    async def save_state(self, state: bytes) -> None:
        with self._failures("save_state"):
            await self._client.set(self._k_state, state)

    async def load_state(self) -> bytes | None:
        with self._failures("load_state"):
            return _optional_bytes(await self._client.get(self._k_state))

    # -- round dictionaries ----------------------------------------------------------------------

    async def add_summer(self, summer_pk: bytes, ephemeral_pk: bytes) -> bool:
        with self._failures("add_summer"):
            return bool(await self._client.hsetnx(self._k_sum_dict, summer_pk, ephemeral_pk))

    async def sum_dict(self) -> dict[bytes, bytes]:
        with self._failures("sum_dict"):
            return _bytes_dict(await self._client.hgetall(self._k_sum_dict))

    async def add_update(
        self, updater_pk: bytes, local_seed_dict: Mapping[bytes, bytes], journal_entry: bytes
    ) -> UpdateRejection | None:
        entries = list(local_seed_dict.items())
        keys = [
            self._k_sum_dict,
            self._k_update_participants,
            self._k_journal,
            *(self._column(summer_pk) for summer_pk, _ in entries),
        ]
        args = [updater_pk, journal_entry, *itertools.chain.from_iterable(entries)]
        with self._failures("add_update"):
            code = int(await self._add_update(keys=keys, args=args))
        if code not in _UPDATE_RESULTS:
            raise StorageError(
                f"redis add_update: a seed dict column already holds updater {updater_pk.hex()} "
                f"although it never submitted (corrupted round data, script code {code})"
            )
        return _UPDATE_RESULTS[code]

    async def seed_dict_column(self, summer_pk: bytes) -> dict[bytes, bytes]:
        with self._failures("seed_dict_column"):
            return _bytes_dict(await self._client.hgetall(self._column(summer_pk)))

    async def update_count(self) -> int:
        with self._failures("update_count"):
            return int(await self._client.scard(self._k_update_participants))

    async def add_mask_vote(self, summer_pk: bytes, mask: bytes) -> VoteRejection | None:
        digest = hashlib.sha256(mask).digest()
        keys = [self._k_sum_dict, self._k_mask_submitted, self._k_masks, self._k_mask_votes]
        with self._failures("add_mask_vote"):
            code = int(await self._add_mask_vote(keys=keys, args=[summer_pk, digest, mask]))
        if code not in _VOTE_RESULTS:
            raise StorageError(f"redis add_mask_vote: unexpected script result {code}")
        return _VOTE_RESULTS[code]

    async def best_masks(self, limit: int = 2) -> list[MaskVote]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._failures("best_masks"):
            flat = await self._best_masks(keys=[self._k_mask_votes, self._k_masks], args=[limit])
            return [
                MaskVote(_as_bytes(mask), int(float(votes)))
                for mask, votes in zip(flat[::2], flat[1::2], strict=True)
            ]

    async def distinct_masks(self) -> int:
        with self._failures("distinct_masks"):
            return int(await self._client.zcard(self._k_mask_votes))

    async def delete_round(self) -> None:
        async def delete(pipe: Any) -> None:
            # WATCH on the sum dict: a summer added between reading the columns and deleting
            # them aborts EXEC and the transaction runs again
            summers = await pipe.hkeys(self._k_sum_dict)
            pipe.multi()
            pipe.delete(*self._round_keys(), *(self._column(_as_bytes(pk)) for pk in summers))

        with self._failures("delete_round"):
            await self._client.transaction(delete, self._k_sum_dict)

    # -- running aggregate: journal and checkpoint -----------------------------------------------

    async def journal(self) -> list[bytes]:
        with self._failures("journal"):
            return [_as_bytes(entry) for entry in await self._client.lrange(self._k_journal, 0, -1)]

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._failures("save_checkpoint"):
            await self._save_checkpoint(
                keys=[self._k_checkpoint, self._k_journal],
                args=[checkpoint.round_id, checkpoint.count, checkpoint.aggregate],
            )

    async def load_checkpoint(self) -> Checkpoint | None:
        with self._failures("load_checkpoint"):
            round_id, count, aggregate = await self._client.hmget(
                self._k_checkpoint, ["round_id", "count", "aggregate"]
            )
        if round_id is None and count is None and aggregate is None:
            return None
        if round_id is None or count is None or aggregate is None:
            raise StorageError(f"redis checkpoint {self._k_checkpoint!r} is incomplete")
        try:
            return Checkpoint(
                round_id=int(round_id), aggregate=_as_bytes(aggregate), count=int(count)
            )
        except ValueError as exc:
            raise StorageError(f"redis checkpoint {self._k_checkpoint!r} is corrupted") from exc

    # -- global models ---------------------------------------------------------------------------

    async def set_latest_model_id(self, model_id: str) -> None:
        with self._failures("set_latest_model_id"):
            await self._client.set(self._k_latest_model_id, model_id.encode())

    async def latest_model_id(self) -> str | None:
        with self._failures("latest_model_id"):
            raw = await self._client.get(self._k_latest_model_id)
        if raw is None:
            return None
        try:
            return _as_bytes(raw).decode("ascii")
        except UnicodeDecodeError as exc:
            raise StorageError(
                f"redis {self._k_latest_model_id!r} does not hold an ASCII model id"
            ) from exc


def _describe(kwargs: Mapping[str, Any]) -> str:
    """Where the pool connects, without credentials (for error messages)."""
    if "path" in kwargs:
        return f"unix:{kwargs['path']} db {kwargs.get('db', 0)}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)} db {kwargs.get('db', 0)}"


def _as_bytes(value: object) -> bytes:
    # the pool never decodes responses, so anything else is a programming error
    if not isinstance(value, bytes):
        raise StorageError(f"redis returned {type(value).__name__}, expected bytes")
    return value


def _optional_bytes(value: object) -> bytes | None:
    return None if value is None else _as_bytes(value)


def _bytes_dict(raw: Mapping[Any, Any]) -> dict[bytes, bytes]:
    return {_as_bytes(key): _as_bytes(value) for key, value in raw.items()}


if TYPE_CHECKING:  # mypy checks that the backend implements the whole interface
    _conforms: Storage = RedisStorage("redis://", "p:")
