"""The ``Store`` contract, run on every backend; then what only one backend can show.

S3 is a real moto server over HTTP (``tests/moto_server.py``), never a mock, so
the error translation is tested against the responses botocore really parses.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bookstore.core.body import FileSlice
from bookstore.core.errors import (
    ConfigurationError,
    ObjectConflict,
    ObjectNotFound,
    StoreUnavailable,
)
from bookstore.store import LocalStore, S3Store, Store, StoredObject
from bookstore.store.s3 import PART_BYTES
from tests.support.moto_server import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoServer,
    free_port,
)

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
METADATA = {"path": "reports/q1.ipynb", "user": "ada", "content-sha256": "abc123"}


async def keys_of(store: Store, prefix: str) -> list[str]:
    """The keys a listing yields, in the order it yields them."""
    return [info.key async for info in store.list(prefix)]


# -- the contract, on every backend --------------------------------------------


async def test_put_then_get_returns_bytes_and_metadata(store: Store) -> None:
    await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)

    assert await store.get("ws/a.ipynb/@1.ipynb") == StoredObject(
        "ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA
    )


async def test_empty_object_and_empty_metadata_round_trip(store: Store) -> None:
    await store.put("ws/empty", b"", {})

    assert await store.get("ws/empty") == StoredObject("ws/empty", b"", {})


async def test_head_returns_metadata_without_data(store: Store) -> None:
    await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)

    assert await store.head("ws/a.ipynb/@1.ipynb") == StoredObject(
        "ws/a.ipynb/@1.ipynb", b"", METADATA
    )


async def test_put_of_the_same_bytes_again_succeeds(store: Store) -> None:
    """A retried upload of a version that did land is not an error."""
    await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)
    await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)

    assert await keys_of(store, "ws/") == ["ws/a.ipynb/@1.ipynb"]


async def test_concurrent_puts_of_the_same_bytes_all_succeed(store: Store) -> None:
    await asyncio.gather(*(store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA) for _ in range(8)))

    assert (await store.get("ws/a.ipynb/@1.ipynb")).data == NOTEBOOK


async def test_put_of_different_bytes_conflicts_and_keeps_the_first(store: Store) -> None:
    """Versions are immutable: nothing overwrites one, not even its metadata."""
    await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)

    with pytest.raises(ObjectConflict) as excinfo:
        await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK + b" ", {"user": "mallory"})

    assert excinfo.value.key == "ws/a.ipynb/@1.ipynb"
    assert await store.get("ws/a.ipynb/@1.ipynb") == StoredObject(
        "ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA
    )


@pytest.mark.parametrize("operation", ["get", "head"])
async def test_reading_a_missing_key_raises_object_not_found(store: Store, operation: str) -> None:
    await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)

    with pytest.raises(ObjectNotFound) as excinfo:
        await getattr(store, operation)("ws/a.ipynb/@2.ipynb")

    assert excinfo.value.key == "ws/a.ipynb/@2.ipynb"


async def test_list_yields_keys_under_the_prefix_in_order_with_sizes(store: Store) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    for key in ["ab/x", "a/y/z", "b", "a/x", "a/b", "a.txt"]:
        await store.put(key, key.encode() * 3, {})
    after = datetime.now(timezone.utc) + timedelta(seconds=1)

    listing = [info async for info in store.list("a/")]
    assert [(info.key, info.size) for info in listing] == [("a/b", 9), ("a/x", 9), ("a/y/z", 15)]
    assert all(before <= info.modified <= after for info in listing)
    assert await keys_of(store, "ab/") == ["ab/x"]
    assert await keys_of(store, "a") == ["a.txt", "a/b", "a/x", "a/y/z", "ab/x"]
    assert await keys_of(store, "a/y") == ["a/y/z"]
    assert await keys_of(store, "") == ["a.txt", "a/b", "a/x", "a/y/z", "ab/x", "b"]


async def test_a_prefix_never_lists_keys_outside_it(store: Store) -> None:
    await store.put("a/x", b"1", {})
    await store.put("ab/x", b"2", {})

    assert await keys_of(store, "a/") == ["a/x"]
    assert await keys_of(store, "c/") == []
    assert await keys_of(store, "a/x/") == []


async def test_versions_of_one_path_list_in_save_order(store: Store) -> None:
    stamps = ["20261125T175806.123456Z", "20250101T000000.000000Z", "20261125T175806.123457Z"]
    for stamp in stamps:
        await store.put(f"ws/q1.ipynb/@{stamp}.ipynb", NOTEBOOK, {})

    assert await keys_of(store, "ws/q1.ipynb/@") == [
        f"ws/q1.ipynb/@{stamp}.ipynb" for stamp in sorted(stamps)
    ]


async def test_keys_with_spaces_and_unicode_round_trip(store: Store) -> None:
    key = "work space/Übersicht ü.ipynb"
    await store.put(key, NOTEBOOK, METADATA)
    await store.put("work space/Zebra.ipynb", NOTEBOOK, {})

    assert await store.get(key) == StoredObject(key, NOTEBOOK, METADATA)
    assert (await store.head(key)).metadata == METADATA
    # "Ü" sorts after "Z" by code point, which is S3's (UTF-8 byte) order.
    assert await keys_of(store, "work space/") == ["work space/Zebra.ipynb", key]
    assert await keys_of(store, "work space/Ü") == [key]


async def test_delete_removes_and_is_idempotent(store: Store) -> None:
    await store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)
    await store.put("ws/b.ipynb/@1.ipynb", NOTEBOOK, METADATA)

    await store.delete("ws/a.ipynb/@1.ipynb")
    await store.delete("ws/a.ipynb/@1.ipynb")
    await store.delete("ws/never/there")

    with pytest.raises(ObjectNotFound):
        await store.get("ws/a.ipynb/@1.ipynb")
    with pytest.raises(ObjectNotFound):
        await store.head("ws/a.ipynb/@1.ipynb")
    assert await keys_of(store, "ws/") == ["ws/b.ipynb/@1.ipynb"]


async def test_a_deleted_key_can_be_written_again(store: Store) -> None:
    await store.put("ws/a", b"first", {"n": "1"})
    await store.delete("ws/a")

    await store.put("ws/a", b"second", {"n": "2"})

    assert await store.get("ws/a") == StoredObject("ws/a", b"second", {"n": "2"})


async def test_check_passes_on_a_usable_store(store: Store) -> None:
    await store.check()


async def test_close_twice_is_harmless(store: Store) -> None:
    await store.check()
    await store.close()
    await store.close()


def large_body(directory: Path, fill: bytes = b"x") -> FileSlice:
    """A body of three S3 parts and a bit, after a header the store must not send."""
    size = 2 * PART_BYTES + PART_BYTES // 2 + 1
    file = directory / f"large-{fill.hex()}.save"
    with file.open("wb") as out:
        out.write(b"header line\n")
        out.write(os.urandom(1024) + fill * (size - 1024))
    return FileSlice(file, len(b"header line\n"), size)


async def test_a_large_body_is_stored_exactly_from_its_file_slice(
    store: Store, tmp_path: Path
) -> None:
    body = large_body(tmp_path)
    expected = body.file.read_bytes()[body.offset :]

    await store.put("ws/big.ipynb/@1.ipynb", body, METADATA)

    stored = await store.get("ws/big.ipynb/@1.ipynb")
    assert stored.data == expected
    assert stored.metadata == METADATA
    assert [info.size async for info in store.list("ws/")] == [body.size]


async def test_a_large_body_put_again_succeeds_and_other_bytes_conflict(
    store: Store, tmp_path: Path
) -> None:
    """A retried upload of a large version is compared in chunks, never read whole."""
    body = large_body(tmp_path)
    await store.put("ws/big.ipynb/@1.ipynb", body, METADATA)
    await store.put("ws/big.ipynb/@1.ipynb", body, METADATA)

    with pytest.raises(ObjectConflict):
        await store.put("ws/big.ipynb/@1.ipynb", large_body(tmp_path, b"y"), METADATA)
    with pytest.raises(ObjectConflict):
        await store.put("ws/big.ipynb/@1.ipynb", body._replace(size=body.size - 1), METADATA)
    assert (await store.get("ws/big.ipynb/@1.ipynb")).data == body.file.read_bytes()[body.offset :]


# -- S3 only -------------------------------------------------------------------


async def test_s3_put_sets_content_type_by_suffix(
    moto_server: MotoServer, s3_bucket: str, s3_store: S3Store
) -> None:
    """Notebooks are served as JSON if someone opens the bucket directly."""
    await s3_store.put("ws/a.ipynb/@1.ipynb", NOTEBOOK, {})
    await s3_store.put("ws/blob", b"\x00\x01", {})

    with moto_server.client() as client:
        notebook = client.head_object(Bucket=s3_bucket, Key="ws/a.ipynb/@1.ipynb")
        blob = client.head_object(Bucket=s3_bucket, Key="ws/blob")
    assert notebook["ContentType"] == "application/json"
    assert blob["ContentType"] == "application/octet-stream"


async def test_s3_uploads_a_large_body_in_parts_and_leaves_no_upload_behind(
    moto_server: MotoServer, s3_bucket: str, s3_store: S3Store, tmp_path: Path
) -> None:
    body = large_body(tmp_path)
    await s3_store.put("ws/big.ipynb/@1.ipynb", body, METADATA)
    with pytest.raises(ObjectConflict):
        await s3_store.put("ws/big.ipynb/@1.ipynb", large_body(tmp_path, b"y"), METADATA)

    with moto_server.client() as client:
        head = client.head_object(Bucket=s3_bucket, Key="ws/big.ipynb/@1.ipynb")
        unfinished = client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of an object sent in 3 parts
    assert head["ContentType"] == "application/json"
    assert unfinished == []


def test_s3_description_names_bucket_and_endpoint() -> None:
    assert S3Store("notes").description == "s3://notes"
    assert (
        S3Store("notes", endpoint_url="http://127.0.0.1:5000").description
        == "s3://notes at http://127.0.0.1:5000"
    )


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"bucket": ""}, "s3_bucket"),
        ({"endpoint_url": "nonsense"}, "s3_endpoint_url"),
        ({"endpoint_url": "ftp://example.com"}, "s3_endpoint_url"),
        ({"region_name": "no such region!"}, "s3_region_name"),
        ({"access_key_id": "AKIAONLYONE"}, "s3_secret_access_key"),
        ({"secret_access_key": "only-the-secret"}, "s3_access_key_id"),
    ],
)
def test_s3_unusable_settings_are_refused_at_construction(
    settings: dict[str, str], named: str
) -> None:
    """A typo is fatal at start-up with the setting's name, not a retry loop later."""
    arguments = {"bucket": "notes", **settings}
    with pytest.raises(ConfigurationError, match=named) as excinfo:
        S3Store(**arguments)
    assert "only-the-secret" not in str(excinfo.value)


async def test_s3_missing_bucket_is_unavailable_and_named(moto_server: MotoServer) -> None:
    store = moto_server.store("no-such-bucket-here")
    try:
        with pytest.raises(StoreUnavailable, match="'no-such-bucket-here' does not exist"):
            await store.check()
        with pytest.raises(StoreUnavailable, match="'no-such-bucket-here' does not exist"):
            await store.put("ws/a", b"x", {})
        with pytest.raises(StoreUnavailable, match="'no-such-bucket-here' does not exist"):
            await store.get("ws/a")
        with pytest.raises(StoreUnavailable, match="'no-such-bucket-here' does not exist"):
            await keys_of(store, "ws/")
        with pytest.raises(StoreUnavailable, match="'no-such-bucket-here' does not exist"):
            await store.delete("ws/a")
    finally:
        await store.close()


async def test_s3_refused_credentials_are_unavailable_without_leaking_them(
    moto_server: MotoServer, s3_bucket: str
) -> None:
    """With moto's IAM check on, unknown keys are refused as real S3 refuses them."""
    access_key_id = "AKIABOOKSTORETEST"
    secret = "bookstore-test-secret-do-not-print"
    store = S3Store(
        s3_bucket,
        endpoint_url=moto_server.endpoint_url,
        region_name=REGION,
        access_key_id=access_key_id,
        secret_access_key=secret,
    )
    try:
        with moto_server.enforce_auth():
            with pytest.raises(StoreUnavailable, match="refused the credentials") as on_check:
                await store.check()
            with pytest.raises(StoreUnavailable, match="refused the credentials") as on_put:
                await store.put("ws/a", b"x", {})
    finally:
        await store.close()

    for excinfo in (on_check, on_put):
        text = f"{excinfo.value} {excinfo.value!r} {store!r} {store.description}"
        assert access_key_id not in text
        assert secret not in text
        assert "s3_secret_access_key" in str(excinfo.value)


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Empty the AWS credential chain: no variables, no files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_credentials")
async def test_s3_without_any_credentials_is_unavailable(
    moto_server: MotoServer, s3_bucket: str
) -> None:
    store = S3Store(s3_bucket, endpoint_url=moto_server.endpoint_url, region_name=REGION)
    try:
        with pytest.raises(StoreUnavailable, match="no usable AWS credentials"):
            await store.check()
    finally:
        await store.close()


@pytest.mark.usefixtures("no_aws_credentials")
async def test_s3_without_keys_uses_the_aws_credential_chain(
    moto_server: MotoServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    store = S3Store(s3_bucket, endpoint_url=moto_server.endpoint_url, region_name=REGION)
    try:
        await store.check()
        await store.put("ws/a", b"x", {})
    finally:
        await store.close()


async def assert_all_unreachable(store: Store, endpoint_url: str) -> None:
    """Every operation fails with a sentence naming the endpoint, never a botocore error.

    Run together, because each one first spends botocore's retries (a few seconds).
    """
    results = await asyncio.gather(
        store.put("ws/b", b"during", {}),
        store.get("ws/a"),
        store.head("ws/a"),
        keys_of(store, "ws/"),
        store.delete("ws/a"),
        store.check(),
        return_exceptions=True,
    )
    for result in results:
        assert isinstance(result, StoreUnavailable), repr(result)
        assert f"cannot reach S3 at {endpoint_url}" in str(result)


async def test_s3_endpoint_down_is_unavailable_and_recovers_on_restart() -> None:
    """S3 going away mid-session is StoreUnavailable; once back, the same store works."""
    with MotoServer() as server:
        server.make_bucket("outage")
        store = server.store("outage")
        try:
            await store.put("ws/a", b"before", {"n": "1"})

            server.stop()
            await assert_all_unreachable(store, server.endpoint_url)

            server.start()
            assert await store.get("ws/a") == StoredObject("ws/a", b"before", {"n": "1"})
            await store.put("ws/b", b"after", {})
            assert await keys_of(store, "ws/") == ["ws/a", "ws/b"]
        finally:
            await store.close()


async def test_s3_endpoint_nobody_listens_on_is_unavailable() -> None:
    endpoint_url = f"http://127.0.0.1:{free_port()}"
    store = S3Store(
        "bucket",
        endpoint_url=endpoint_url,
        region_name=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
    try:
        await assert_all_unreachable(store, endpoint_url)
    finally:
        await store.close()


# -- local only ----------------------------------------------------------------


async def test_local_root_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.write_text("not a directory")
    store = LocalStore(root)

    with pytest.raises(StoreUnavailable, match="not a directory"):
        await store.check()
    with pytest.raises(StoreUnavailable, match=str(root)):
        await store.put("ws/a", b"x", {})


async def test_local_root_under_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = LocalStore(tmp_path / "file" / "store")

    with pytest.raises(StoreUnavailable, match="cannot write"):
        await store.check()


async def test_local_check_creates_the_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "deep" / "store")

    await store.check()

    assert (tmp_path / "deep" / "store").is_dir()
    assert store.description == str(tmp_path / "deep" / "store")


async def test_local_layout_leaves_no_temp_files_and_delete_prunes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put("ws/sub dir/a.ipynb/@1.ipynb", NOTEBOOK, METADATA)
    await store.put("ws/b", b"b", {})

    assert (tmp_path / "data/ws/sub dir/a.ipynb/@1.ipynb").read_bytes() == NOTEBOOK
    assert (tmp_path / "meta/ws/sub dir/a.ipynb/@1.ipynb.json").is_file()
    assert list((tmp_path / "tmp").iterdir()) == []

    await store.delete("ws/sub dir/a.ipynb/@1.ipynb")

    assert not (tmp_path / "data/ws/sub dir").exists()
    assert not (tmp_path / "meta/ws/sub dir").exists()
    assert (tmp_path / "data/ws/b").is_file()


async def test_local_racing_puts_of_different_bytes_have_one_winner(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    results = await asyncio.gather(
        *(store.put("ws/a", f"version {n}".encode(), {"n": str(n)}) for n in range(8)),
        return_exceptions=True,
    )

    winners = [n for n, result in enumerate(results) if result is None]
    assert len(winners) == 1
    assert all(isinstance(r, ObjectConflict) for r in results if r is not None)
    assert await store.get("ws/a") == StoredObject(
        "ws/a", f"version {winners[0]}".encode(), {"n": str(winners[0])}
    )


async def test_local_metadata_left_by_a_crashed_put_is_replaced(tmp_path: Path) -> None:
    """A put that died after writing metadata but before linking data must not block a retry."""
    store = LocalStore(tmp_path)
    (tmp_path / "meta/ws").mkdir(parents=True)
    (tmp_path / "meta/ws/a.json").write_text('{"stale": "yes"}')

    await store.put("ws/a", b"x", {"fresh": "yes"})

    assert await store.get("ws/a") == StoredObject("ws/a", b"x", {"fresh": "yes"})


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../escape", "a/../../b", "a/./b", "a//b", "a\x00b"]
)
async def test_local_refuses_keys_that_could_escape_the_root(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "store")

    with pytest.raises(ValueError, match="store key"):
        await store.put(key, b"x", {})
    with pytest.raises(ValueError, match="store key"):
        await store.get(key)
    with pytest.raises(ValueError, match="store key"):
        await store.delete(key)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(("first", "second"), [("a", "a/b"), ("a/b", "a")])
async def test_local_refuses_a_key_that_is_another_keys_directory(
    tmp_path: Path, first: str, second: str
) -> None:
    """A file cannot also be a directory; version keys never need it (they end in ``/@…``)."""
    store = LocalStore(tmp_path)
    await store.put(first, b"x", {})

    with pytest.raises(ValueError, match="both a file and a directory"):
        await store.put(second, b"y", {})
    with pytest.raises(ObjectNotFound):
        await store.get(second)
    assert await keys_of(store, "") == [first]


@pytest.mark.parametrize("prefix", ["/etc/", "../", "a/../", "a\x00/"])
async def test_local_refuses_prefixes_that_could_escape_the_root(
    tmp_path: Path, prefix: str
) -> None:
    with pytest.raises(ValueError, match="store prefix"):
        await keys_of(LocalStore(tmp_path), prefix)


async def test_put_with_overwrite_replaces_bytes_and_metadata(store: Store) -> None:
    await store.put("published/a.ipynb", b"first", {"n": "1"})
    await store.put("published/a.ipynb", b"second", {"n": "2"}, overwrite=True)
    stored = await store.get("published/a.ipynb")
    assert (stored.data, stored.metadata) == (b"second", {"n": "2"})
    assert [info.key async for info in store.list("published/")] == ["published/a.ipynb"]
