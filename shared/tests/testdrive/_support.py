"""The real coordinator for the test-drive tests, on either storage backend.

Import only after ``pytest.importorskip("httpx")``. Phases are short (a round of 20
participants takes about a second), and an Update phase without enough updates times out
after 2 s, so the coordinator starts the next round soon.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sdk._coordinator import Coordinator, free_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LENGTH = 50
#: seconds an Update phase waits for its minimum of updates
UPDATE_TIME_MAX = 2.0


def config_text(port: int, models: Path, *, backend: str, key_prefix: str) -> str:
    return f"""\
[api]
bind_address = "127.0.0.1:{port}"

[pet.sum]
probability = 0.3
count = {{ min = 1, max = 100 }}
time = {{ min = 0.3, max = 5 }}

[pet.update]
probability = 0.9
count = {{ min = 3, max = 100 }}
time = {{ min = 0.5, max = {UPDATE_TIME_MAX} }}

[pet.sum2]
count = {{ min = 1, max = 100 }}
time = {{ min = 0.3, max = 5 }}

[model]
length = {LENGTH}

[storage]
backend = "{backend}"
url = "{REDIS_URL}"
key_prefix = "{key_prefix}"

[models]
backend = "directory"
directory = "{models}"

[log]
level = "info"
"""


def _redis_or_skip() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        pytest.skip(f"Redis at {REDIS_URL} is unreachable (set REDIS_URL): {exc}")
    return client


def _delete_prefix(client: Any, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@contextmanager
def coordinator(directory: Path, backend: str) -> Iterator[Coordinator]:
    """A running coordinator; Redis keys under a prefix of its own, deleted afterwards."""
    client = _redis_or_skip() if backend == "redis" else None
    prefix = f"xaynet-test-drive-{uuid.uuid4().hex[:12]}:"
    port = free_port()
    config = directory / "coordinator.toml"
    config.write_text(
        config_text(port, directory / "models", backend=backend, key_prefix=prefix),
        encoding="utf-8",
    )
    process = Coordinator(config, port, directory / "coordinator.log")
    try:
        process.start()
        yield process
    finally:
        process.kill()
        if client is not None:
            _delete_prefix(client, prefix)
            client.close()


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -m xaynet.testdrive ARGS`` (the console script's code), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "xaynet.testdrive", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def global_model_file(directory: Path, model_id: str) -> Path:
    """Where the coordinator stored a global model (raw little-endian float64)."""
    return directory / "models" / model_id
