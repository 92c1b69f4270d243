"""Where global models are kept: a local directory or S3-compatible object storage.

A model is an opaque byte string (its encoding is the engine's business) stored under its id
``"{round_id}_{round seed hex}"``. Ids are checked against a strict pattern before they touch a
path or an object key, and a stored model is never overwritten: a second save of the same id is
an error, so a restarted coordinator cannot silently replace a model clients already fetched.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "ModelStoreError",
    "MODEL_ID_PATTERN",
    "make_model_id",
    "validate_model_id",
    "ModelStore",
    "DirectoryModelStore",
    "S3ModelStore",
]

#: what a model id looks like: decimal round id, underscore, 32-byte round seed in lower-case hex
MODEL_ID_PATTERN = r"^[0-9]+_[0-9a-f]{64}$"
# fullmatch, because "$" alone would also accept a trailing newline
_MODEL_ID = re.compile(r"[0-9]+_[0-9a-f]{64}")

_T = TypeVar("_T")


class ModelStoreError(Exception):
    """The model store failed, refused an id, or has no model under it."""


def make_model_id(round_id: int, round_seed: bytes) -> str:
    """The id of the global model of round ``round_id`` (``round_seed`` is 32 bytes)."""
    if round_id < 0 or len(round_seed) != 32:
        raise ValueError("a model id needs a round id >= 0 and a 32-byte round seed")
    return f"{round_id}_{round_seed.hex()}"


def validate_model_id(model_id: str) -> str:
    """Return ``model_id`` if it matches :data:`MODEL_ID_PATTERN`, else raise ModelStoreError."""
    if not isinstance(model_id, str) or _MODEL_ID.fullmatch(model_id) is None:
        raise ModelStoreError(f"invalid model id {model_id!r}: expected {MODEL_ID_PATTERN}")
    return model_id


class ModelStore(Protocol):
    """What the engine needs from a model store."""

    async def save(self, model_id: str, data: bytes) -> None:
        """Store a new model. ModelStoreError if ``model_id`` is taken or invalid."""
        ...

    async def load(self, model_id: str) -> bytes:
        """The stored model. ModelStoreError if there is none (or the id is invalid)."""
        ...

    async def exists(self, model_id: str) -> bool:
        """Whether a model is stored under ``model_id``."""
        ...

    async def ready(self) -> bool:
        """Whether the store is reachable and usable (readiness)."""
        ...

    async def ensure(self) -> None:
        """Create the directory or bucket if missing (at start-up)."""
        ...


async def _in_thread(func: Callable[..., _T], *args: Any) -> _T:
    # file system and boto3 calls block: keep them off the event loop
    return await anyio.to_thread.run_sync(partial(func, *args))


class DirectoryModelStore:
    """Models as files ``<path>/<model id>``, written atomically.

    A model is written to a hidden temporary file in the same directory, flushed to disk, then
    hard-linked to its final name, which fails if the name exists, so neither a partial file nor
    an overwrite can ever be observed (file systems without hard links fall back to a check and
    ``os.replace``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._dir = Path(path)

    @property
    def path(self) -> Path:
        return self._dir

    def __repr__(self) -> str:
        return f"DirectoryModelStore({str(self._dir)!r})"

    async def ensure(self) -> None:
        await _in_thread(self._ensure)

    async def ready(self) -> bool:
        return await _in_thread(self._ready)

    async def exists(self, model_id: str) -> bool:
        path = self._path(model_id)
        return await _in_thread(path.is_file)

    async def load(self, model_id: str) -> bytes:
        return await _in_thread(self._load, self._path(model_id))

    async def save(self, model_id: str, data: bytes) -> None:
        await _in_thread(self._save, self._path(model_id), bytes(data))

    # -- blocking parts, run in a worker thread --------------------------------------------------

    def _path(self, model_id: str) -> Path:
        return self._dir / validate_model_id(model_id)

    def _ensure(self) -> None:
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelStoreError(f"cannot create model directory {self._dir}: {exc}") from exc

    def _ready(self) -> bool:
        return self._dir.is_dir() and os.access(self._dir, os.W_OK | os.X_OK)

    def _load(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ModelStoreError(f"no model {path.name} in {self._dir}") from exc
        except OSError as exc:
            raise ModelStoreError(f"cannot read model {path}: {exc}") from exc

    def _save(self, path: Path, data: bytes) -> None:
        if path.exists():
            raise ModelStoreError(f"model {path.name} already exists in {self._dir}")
        try:
            # the temporary name starts with a dot and cannot match a model id
            fd, tmp_name = tempfile.mkstemp(dir=self._dir, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise ModelStoreError(f"cannot write to model directory {self._dir}: {exc}") from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            tmp.chmod(0o644)  # mkstemp makes it owner-only; models are not secret
            self._publish(tmp, path)
        except OSError as exc:
            raise ModelStoreError(f"cannot write model {path}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_directory(self._dir)

    def _publish(self, tmp: Path, path: Path) -> None:
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise ModelStoreError(f"model {path.name} already exists in {self._dir}") from exc
        except OSError:
            # no hard links here (some network and FUSE file systems): check, then rename
            if path.exists():
                raise ModelStoreError(f"model {path.name} already exists in {self._dir}") from None
            os.replace(tmp, path)


def _fsync_directory(directory: Path) -> None:
    """Make a new directory entry durable (POSIX; a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


class S3ModelStore:
    """Models as objects ``<model id>`` in one bucket of S3 or an S3-compatible store (MinIO).

    ``endpoint_url`` None means AWS itself; with an endpoint, path-style addressing is used
    (what MinIO expects). Credentials left None come from boto3's usual chain. Saving uses a
    conditional put (``If-None-Match: *``) so that two writers cannot both store one id.
    """

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        if not bucket:
            raise ValueError("bucket must not be empty")
        self._bucket = bucket
        self._region = region
        self._where = f"bucket {bucket!r}" + (f" at {endpoint_url}" if endpoint_url else "")
        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        # a private session: boto3's default session is shared module state
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    def __repr__(self) -> str:
        return f"S3ModelStore({self._where})"

    async def ensure(self) -> None:
        await _in_thread(self._ensure)

    async def ready(self) -> bool:
        return await _in_thread(self._ready)

    async def exists(self, model_id: str) -> bool:
        return await _in_thread(self._exists, validate_model_id(model_id))

    async def load(self, model_id: str) -> bytes:
        return await _in_thread(self._load, validate_model_id(model_id))

    async def save(self, model_id: str, data: bytes) -> None:
        await _in_thread(self._save, validate_model_id(model_id), bytes(data))

    # -- blocking parts, run in a worker thread --------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise ModelStoreError(f"S3 {operation} failed ({self._where}): {exc}") from exc

    def _ensure(self) -> None:
        if self._ready():
            return
        kwargs: dict[str, Any] = {"Bucket": self._bucket}
        if self._region and self._region != "us-east-1":
            # us-east-1 is the default location and must not be named
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            with self._errors("create bucket"):
                self._client.create_bucket(**kwargs)
        except ModelStoreError as exc:
            if _error_code(exc.__cause__) != "BucketAlreadyOwnedByYou":
                raise

    def _ready(self) -> bool:
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except (ClientError, BotoCoreError):
            return False
        return True

    def _exists(self, model_id: str) -> bool:
        try:
            with self._errors(f"head {model_id}"):
                self._client.head_object(Bucket=self._bucket, Key=model_id)
        except ModelStoreError as exc:
            if _error_code(exc.__cause__) in _MISSING_CODES:
                return False
            raise
        return True

    def _load(self, model_id: str) -> bytes:
        try:
            with self._errors(f"get {model_id}"):
                response = self._client.get_object(Bucket=self._bucket, Key=model_id)
                with contextlib.closing(response["Body"]) as body:
                    data: bytes = body.read()
        except ModelStoreError as exc:
            if _error_code(exc.__cause__) in _MISSING_CODES:
                raise ModelStoreError(f"no model {model_id} in {self._where}") from exc
            raise
        return data

    def _save(self, model_id: str, data: bytes) -> None:
        if self._exists(model_id):
            raise ModelStoreError(f"model {model_id} already exists in {self._where}")
        put = partial(
            self._client.put_object,
            Bucket=self._bucket,
            Key=model_id,
            Body=data,
            ContentType="application/octet-stream",
        )
        try:
            with self._errors(f"put {model_id}"):
                put(IfNoneMatch="*")
        except ModelStoreError as exc:
            code = _error_code(exc.__cause__)
            if code in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                raise ModelStoreError(f"model {model_id} already exists in {self._where}") from exc
            if code != "NotImplemented":
                raise
            # a store without conditional writes: the existence check above has to do
            with self._errors(f"put {model_id}"):
                put()


def _error_code(exc: BaseException | None) -> str | None:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


if TYPE_CHECKING:  # mypy checks that both stores implement the whole interface
    _directory: ModelStore = DirectoryModelStore(".")
    _s3: ModelStore = S3ModelStore("bucket")
