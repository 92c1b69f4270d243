"""Model stores: one contract for the directory and S3 (moto, in-process), then what each
adds (atomic files without hard links or partial files; conditional puts, bucket creation)."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from xaynet_coordinator.model_store import (
    MODEL_ID_PATTERN,
    DirectoryModelStore,
    ModelStore,
    ModelStoreError,
    S3ModelStore,
    make_model_id,
    validate_model_id,
)

pytestmark = pytest.mark.anyio

HEX = "0123456789abcdef" * 4
MODEL_ID = f"12_{HEX}"
OTHER_ID = f"13_{'f' * 64}"
BUCKET = "xaynet-test-models"
REGION = "eu-central-1"

BAD_IDS = [
    "",
    f"../{MODEL_ID}",
    f"{MODEL_ID}/../x",
    f"/tmp/{MODEL_ID}",
    f"12_{HEX[:-1]}",  # 63 hex digits
    f"12_{HEX}0",  # 65
    f"12_{HEX.upper()}",
    f"x_{HEX}",
    f"_{HEX}",
    f"-1_{HEX}",
    f" 12_{HEX}",
    f"12_{HEX}\n",  # "$" alone would let this through
    f"12_{HEX}.tmp",
    f".{MODEL_ID}",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def aws() -> Iterator[None]:
    # moto intercepts every boto3 call made while this is active, in any thread
    with mock_aws():
        yield


def s3_store() -> S3ModelStore:
    return S3ModelStore(BUCKET, region=REGION, access_key="testing", secret_key="testing")


def s3_client() -> Any:
    return boto3.session.Session().client(
        "s3", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture(params=["directory", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    backend: ModelStore
    if request.param == "directory":
        backend = DirectoryModelStore(tmp_path / "models")
    else:
        request.getfixturevalue("aws")
        backend = s3_store()
    await backend.ensure()
    return backend


async def stored_names(store: ModelStore) -> set[str]:
    """What the backend holds, read behind its back."""
    if isinstance(store, DirectoryModelStore):
        return {path.name for path in store.path.iterdir()}
    assert isinstance(store, S3ModelStore)
    listing = s3_client().list_objects_v2(Bucket=store.bucket)
    return {obj["Key"] for obj in listing.get("Contents", [])}


# -- ids ------------------------------------------------------------------------------------------


def test_make_model_id_matches_the_pattern() -> None:
    model_id = make_model_id(12, bytes.fromhex(HEX))
    assert model_id == MODEL_ID
    assert validate_model_id(model_id) == model_id
    assert MODEL_ID_PATTERN == r"^[0-9]+_[0-9a-f]{64}$"


@pytest.mark.parametrize(("round_id", "seed"), [(-1, bytes(32)), (1, bytes(31)), (1, bytes(33))])
def test_make_model_id_refuses_bad_input(round_id: int, seed: bytes) -> None:
    with pytest.raises(ValueError, match="model id"):
        make_model_id(round_id, seed)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_validate_model_id_refuses(bad_id: str) -> None:
    with pytest.raises(ModelStoreError, match="invalid model id"):
        validate_model_id(bad_id)


# -- contract -------------------------------------------------------------------------------------


async def test_save_load_exists(store: ModelStore) -> None:
    data = bytes(range(256)) * 4000
    assert await store.ready() is True
    assert await store.exists(MODEL_ID) is False
    await store.save(MODEL_ID, data)
    assert await store.exists(MODEL_ID) is True
    assert await store.exists(OTHER_ID) is False
    assert await store.load(MODEL_ID) == data
    await store.save(OTHER_ID, b"")
    assert await store.load(OTHER_ID) == b""
    assert await stored_names(store) == {MODEL_ID, OTHER_ID}


async def test_overwrite_is_refused(store: ModelStore) -> None:
    await store.save(MODEL_ID, b"first")
    with pytest.raises(ModelStoreError, match="already exists"):
        await store.save(MODEL_ID, b"second")
    assert await store.load(MODEL_ID) == b"first"


async def test_missing_model(store: ModelStore) -> None:
    with pytest.raises(ModelStoreError, match="no model"):
        await store.load(MODEL_ID)


async def test_bad_ids_are_refused_everywhere(store: ModelStore) -> None:
    for bad_id in BAD_IDS:
        with pytest.raises(ModelStoreError, match="invalid model id"):
            await store.save(bad_id, b"data")
        with pytest.raises(ModelStoreError, match="invalid model id"):
            await store.load(bad_id)
        with pytest.raises(ModelStoreError, match="invalid model id"):
            await store.exists(bad_id)
    assert await stored_names(store) == set()


async def test_ensure_is_idempotent(store: ModelStore) -> None:
    await store.save(MODEL_ID, b"kept")
    await store.ensure()
    assert await store.ready() is True
    assert await store.load(MODEL_ID) == b"kept"


# -- directory ------------------------------------------------------------------------------------


async def test_directory_ensure_creates_nested_directories(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "a" / "b" / "models")
    assert await store.ready() is False
    await store.ensure()
    assert (tmp_path / "a" / "b" / "models").is_dir()
    assert await store.ready() is True


async def test_directory_ensure_fails_on_a_file(tmp_path: Path) -> None:
    (tmp_path / "models").write_bytes(b"not a directory")
    store = DirectoryModelStore(tmp_path / "models")
    assert await store.ready() is False
    with pytest.raises(ModelStoreError, match="cannot create"):
        await store.ensure()


async def test_directory_save_without_ensure_fails(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "missing")
    with pytest.raises(ModelStoreError, match="cannot write"):
        await store.save(MODEL_ID, b"data")


async def test_directory_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryModelStore(tmp_path)
    final = tmp_path / MODEL_ID
    seen: list[list[str]] = []

    def failing_fsync(fd: int) -> None:
        # the data is in a hidden temporary file; the model's name does not exist yet
        seen.append(sorted(path.name for path in tmp_path.iterdir()))
        assert not final.exists()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ModelStoreError, match="No space left"):
        await store.save(MODEL_ID, b"x" * 100_000)

    [names] = seen
    assert len(names) == 1
    assert names[0].startswith(f".{MODEL_ID}.")
    assert names[0].endswith(".tmp")
    assert list(tmp_path.iterdir()) == []
    assert await store.exists(MODEL_ID) is False


async def test_directory_model_appears_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryModelStore(tmp_path)
    data = os.urandom(300_000)
    real_link = os.link
    published: list[bytes] = []

    def watching_link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        # at the moment the name appears, the file behind it is already complete
        assert not Path(dst).exists()
        published.append(Path(src).read_bytes())
        real_link(src, dst)

    monkeypatch.setattr(os, "link", watching_link)
    await store.save(MODEL_ID, data)
    assert published == [data]
    assert [path.name for path in tmp_path.iterdir()] == [MODEL_ID]


async def test_directory_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = DirectoryModelStore(tmp_path)
    await store.save(MODEL_ID, b"first")
    with pytest.raises(ModelStoreError, match="already exists"):
        await store.save(MODEL_ID, b"second")
    assert await store.load(MODEL_ID) == b"first"
    assert [path.name for path in tmp_path.iterdir()] == [MODEL_ID]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
async def test_directory_models_are_readable(tmp_path: Path) -> None:
    await DirectoryModelStore(tmp_path).save(MODEL_ID, b"data")
    assert stat.S_IMODE((tmp_path / MODEL_ID).stat().st_mode) == 0o644


async def test_directory_ignores_temporary_files(tmp_path: Path) -> None:
    (tmp_path / f".{MODEL_ID}.abc123.tmp").write_bytes(b"partial")
    store = DirectoryModelStore(tmp_path)
    assert await store.exists(MODEL_ID) is False
    await store.save(MODEL_ID, b"complete")
    assert await store.load(MODEL_ID) == b"complete"


# -- S3 -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
async def test_s3_ensure_creates_the_bucket_in_its_region() -> None:
    store = s3_store()
    assert await store.ready() is False
    await store.ensure()
    assert await store.ready() is True
    client = s3_client()
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == [BUCKET]
    assert client.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == REGION


@pytest.mark.usefixtures("aws")
async def test_s3_ensure_accepts_an_existing_bucket() -> None:
    s3_client().create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    store = s3_store()
    await store.ensure()
    await store.ensure()
    assert await store.ready() is True


@pytest.mark.usefixtures("aws")
async def test_s3_already_owned_bucket_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_store()
    await store.ensure()
    # the bucket appeared between the readiness check and the creation (another coordinator)
    monkeypatch.setattr(store, "_ready", lambda: False)
    await store.ensure()


@pytest.mark.usefixtures("aws")
async def test_s3_conditional_put_refuses_a_racing_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_store()
    await store.ensure()
    # another writer stores the id after the existence check: the conditional put catches it
    monkeypatch.setattr(store, "_exists", lambda model_id: False)
    s3_client().put_object(Bucket=BUCKET, Key=MODEL_ID, Body=b"the other writer's")
    with pytest.raises(ModelStoreError, match="already exists"):
        await store.save(MODEL_ID, b"mine")
    assert await store.load(MODEL_ID) == b"the other writer's"


@pytest.mark.usefixtures("aws")
async def test_s3_store_without_conditional_puts(monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_store()
    await store.ensure()
    real_put = store._client.put_object
    calls: list[dict[str, Any]] = []

    def put_without_conditions(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if "IfNoneMatch" in kwargs:
            error = {"Error": {"Code": "NotImplemented", "Message": "not here"}}
            raise ClientError(error, "PutObject")
        return real_put(**kwargs)

    monkeypatch.setattr(store._client, "put_object", put_without_conditions)
    await store.save(MODEL_ID, b"data")
    assert await store.load(MODEL_ID) == b"data"
    assert ["IfNoneMatch" in call for call in calls] == [True, False]


async def test_s3_unreachable_endpoint() -> None:
    store = S3ModelStore(
        BUCKET,
        endpoint_url="http://127.0.0.1:1",
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
        max_attempts=1,
        connect_timeout=1,
    )
    assert await store.ready() is False
    with pytest.raises(ModelStoreError, match=r"create bucket failed .*127\.0\.0\.1:1"):
        await store.ensure()
    with pytest.raises(ModelStoreError, match=r"127\.0\.0\.1:1"):
        await store.save(MODEL_ID, b"data")
    with pytest.raises(ModelStoreError, match=r"127\.0\.0\.1:1"):
        await store.load(MODEL_ID)
