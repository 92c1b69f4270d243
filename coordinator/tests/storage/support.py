"""Shared by the storage tests: where Redis is and how to clean up after a test."""

from __future__ import annotations

import os

import redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def keys_under(client: redis.Redis, prefix: str) -> set[bytes]:
    """Every key under ``prefix`` (SCAN, never KEYS)."""
    # the test prefixes contain no glob characters (*, ?, [, \), so MATCH is literal here
    return set(client.scan_iter(match=f"{prefix}*", count=500))


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN + DEL, never FLUSHDB on a shared server)."""
    keys = keys_under(client, prefix)
    if keys:
        client.delete(*keys)
