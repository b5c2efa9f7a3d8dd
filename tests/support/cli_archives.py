"""Archives for ``bookstore-history`` to work on, and two ways to run it on them.

* ``filled``: one archive per backend, filled by a real ``jupyter server``
  saving over HTTP, built once per session (whichever module asks first) and
  only read: a local store with the default SQLite index, S3 (moto) with
  SQLite, and S3 with a PostgreSQL index, as on JupyterHub. ``scratch``: a copy
  of it (files, index and bucket) for tests that change things.
* ``history``/``any_history``: a history with chosen save times, built with the
  library's own ``archive_record`` (saves at chosen times cannot be made through
  a server), for the retention rules of ``prune``.

``Archive.cli`` runs the command line in the test process with click's
``CliRunner``, as a user's shell would run it: the same Jupyter directories and
``BOOKSTORE_*`` variables as the server (the test runner's own cleared), the
archive's base as the working directory, ``TZ`` applied, and stdout and stderr
captured apart at the file descriptors. ``Archive.script`` runs the installed
console script in a subprocess, for the few tests that need a real process.

Test modules import the fixtures by name (``from tests.support.cli_archives
import filled``); every backend that needs PostgreSQL carries the ``postgres``
marker, so ``-m "not postgres"`` never starts it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import nbformat
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from bookstore.archiving.archiver import archive_record
from bookstore.cli.main import main
from bookstore.core import keys
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase, Version
from bookstore.store import LocalStore, S3Store, Store
from tests.support.archives import local_store_objects
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoServer,
    free_port,
    s3_env,
)
from tests.support.postgres_server import PostgresServer

__all__ = [
    "ALL_OF_HISTORY",
    "BACKENDS",
    "CLI",
    "COMMANDS",
    "DIRTY",
    "EACH_INDEX",
    "HISTORY",
    "HISTORY_TOTAL",
    "PNG",
    "PREFIX",
    "SAVES",
    "SQLITE_ONLY",
    "TOTAL",
    "VERSIONS",
    "Archive",
    "Result",
    "Row",
    "any_history",
    "assert_store_matches_index",
    "concurrently",
    "filled",
    "history",
    "invoke",
    "one_line_error",
    "scratch",
    "sha256",
    "survivors",
    "table_rows",
    "tree",
    "unreachable_s3",
]

T = TypeVar("T")

_found = shutil.which("bookstore-history", path=str(Path(sys.executable).parent))
assert _found is not None, f"bookstore-history is not installed next to {sys.executable}"
CLI = _found
"""The installed console script, for ``Archive.script``."""

BACKENDS = ["local", "s3", pytest.param("postgresql", marks=pytest.mark.postgres)]
"""A local store and S3, each with a SQLite index; and S3 with a PostgreSQL index."""
EACH_INDEX = pytest.mark.parametrize(
    "filled", ["local", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
"""For tests of index-only behaviour, once on SQLite and once on PostgreSQL."""
SQLITE_ONLY = pytest.mark.parametrize("filled", ["local"], indirect=True)
"""For what only an index in a file has: ATTACH, a file that is not there."""

PREFIX = "workspace"

COMMANDS = [
    "list",
    "show",
    "diff",
    "stats",
    "sql",
    "restore",
    "reindex",
    "verify",
    "prune",
    "repack",
    "label",
    "pin",
    "unpin",
    "outbox",
    "retry",
]
"""Every command of ``bookstore-history``, as its help lists them."""

# -- what the server archives --------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3).decode()


def analysis_v3() -> dict[str, Any]:
    """Version 3 of analysis.ipynb: cell 2 rewritten with an image output, a cell added."""
    nb = notebook("two", cells=2)
    plot = nb["cells"][1]
    plot["source"] = "show_plot()"
    plot["execution_count"] = 1
    plot["outputs"] = [
        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
    ]
    nb["cells"].append(nbformat.v4.new_markdown_cell("# Results", id="results"))
    return nb


SAVES: dict[str, list[dict[str, Any]]] = {
    "analysis.ipynb": [notebook("one"), notebook("two", cells=2), analysis_v3()],
    "reports/Q1 summary.ipynb": [notebook("Ünïcode ✓ first"), notebook("Ünïcode ✓ second")],
    "gone.ipynb": [notebook("draft 1"), notebook("draft 2")],
}
"""Saved in this order, each one version; gone.ipynb is deleted afterwards."""

VERSIONS = {path: len(saves) for path, saves in SAVES.items()}
TOTAL = sum(VERSIONS.values())

DIRTY = json.dumps(notebook("unsaved work, never archived"), indent=1).encode()
"""A notebook's content that no version has: work a restore must not destroy."""

# -- running the command line --------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One finished run of the command line, in the test process or in its own."""

    args: tuple[str, ...]
    code: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"bookstore-history {' '.join(self.args)} -> {self.code}\n"
            f"--- stdout\n{self.out}\n--- stderr\n{self.stderr}"
        )


def invoke(
    args: Sequence[str],
    *,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run ``bookstore-history ARGS`` in this process, as a shell would run the script.

    ``env`` changes variables for the call (``None`` removes one); ``TZ`` is applied
    to the C library as a new process would apply it. Output is captured at file
    descriptors 1 and 2, so nothing written around ``sys.stdout`` escapes; log
    records go where a fresh process sends them (stderr, for warnings), not to
    pytest. An exception the command line lets out is printed as the interpreter
    prints it, with exit code 1: a traceback is a bug, and the tests must see it.
    """
    variables = dict(env or {})
    zone = variables.pop("TZ", os.environ.get("TZ"))
    runner = CliRunner(capture="fd")
    with _working_directory(cwd), _time_zone(zone), _logging_as_in_a_new_process():
        outcome = runner.invoke(main, list(args), env=variables, prog_name="bookstore-history")
    stderr = outcome.stderr
    code = outcome.exit_code
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        assert outcome.exc_info is not None
        stderr += "".join(traceback.format_exception(*outcome.exc_info))
        code = 1
    return Result(tuple(args), code, outcome.stdout_bytes, stderr)


@contextmanager
def _working_directory(directory: Path | None) -> Iterator[None]:
    if directory is None:
        yield
        return
    previous = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)


@contextmanager
def _time_zone(zone: str | None) -> Iterator[None]:
    """``TZ`` for the call: local times (``astimezone()``) follow it, as in a new process."""
    previous = os.environ.get("TZ")
    if zone == previous:
        yield
        return
    _set_zone(zone)
    try:
        yield
    finally:
        _set_zone(previous)


def _set_zone(zone: str | None) -> None:
    if zone is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = zone
    time.tzset()


@contextmanager
def _logging_as_in_a_new_process() -> Iterator[None]:
    """Take pytest's handlers off the root logger for the call, so that a warning
    logged by the command line reaches stderr (Python's last-resort handler), as it
    would from the script, instead of disappearing into pytest's log capture."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class Row(NamedTuple):
    """One row of the index's versions table."""

    path: str
    version: int
    store_key: str
    size: int
    sha256: str
    queued_at: datetime
    label: str | None
    pinned: bool

    @property
    def identity(self) -> tuple[str, int, str, datetime]:
        """What a reindex must reproduce: (path, version, sha256, queued_at)."""
        return (self.path, self.version, self.sha256, self.queued_at)


_INHERITED = ("BOOKSTORE_", "JPYNB_", "AWS_", "JUPYTER_")
"""The test runner's variables that must not reach the command line."""


@dataclass
class Archive:
    """A notebook root and Jupyter directories, with the store and index that go with them.

    ``options`` are global options put before every command (``--index-url`` ...);
    for S3 the settings travel as ``BOOKSTORE_*`` variables, as for the server.
    """

    backend: str
    base: Path
    index_url: str
    store_dir: Path
    saves: dict[str, list[bytes]] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    moto: MotoServer | None = None
    bucket: str | None = None
    postgres: PostgresServer | None = None

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def config_dir(self) -> Path:
        return self.base / "config"

    @property
    def in_s3(self) -> bool:
        return self.moto is not None

    def settings_env(self) -> dict[str, str]:
        """The BOOKSTORE_* variables the server and the command line share: an explicit
        workspace, whose paths are relative to the root, as they always were."""
        shared = {"BOOKSTORE_WORKSPACE_PREFIX": PREFIX}
        if self.postgres:
            shared["BOOKSTORE_INDEX_URL"] = self.index_url
        if self.moto is None:
            return shared
        assert self.bucket is not None
        return {**shared, **s3_env(self.bucket, self.moto.endpoint_url)}

    def env_changes(self, extra: Mapping[str, str] | None = None) -> dict[str, str | None]:
        """How a user's environment differs from the test runner's: none of the
        runner's settings (``None``: removed), this archive's instead."""
        changes: dict[str, str | None] = dict.fromkeys(
            (name for name in os.environ if name.startswith(_INHERITED)), None
        )
        changes.update(
            JUPYTER_DATA_DIR=str(self.data_dir),
            JUPYTER_CONFIG_DIR=str(self.config_dir),
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            TZ="UTC",
            COLUMNS="200",
            NO_COLOR="1",
        )
        changes.update(self.settings_env())
        changes.update(extra or {})
        return changes

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A user's environment, whole, for a subprocess."""
        env = dict(os.environ)
        for name, value in self.env_changes(extra).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _check(self, result: Result, expect: int | None) -> Result:
        assert expect is None or result.code == expect, str(result)
        return result

    def cli(
        self, *args: str, expect: int | None = 0, env: Mapping[str, str] | None = None
    ) -> Result:
        """Run ``bookstore-history --root-dir ROOT [options] ARGS`` in this process;
        check the exit code (``expect=None``: any)."""
        full = ("--root-dir", str(self.root), *self.options, *args)
        result = invoke(full, env=self.env_changes(env), cwd=self.base)
        return self._check(replace(result, args=tuple(args)), expect)

    def script(
        self, *args: str, expect: int | None = 0, env: Mapping[str, str] | None = None
    ) -> Result:
        """The same, with the installed console script in a process of its own."""
        full = ("--root-dir", str(self.root), *self.options, *args)
        process = subprocess.run(
            [CLI, *full],
            env=self.env(env),
            cwd=self.base,
            capture_output=True,
            timeout=120,
            check=False,
        )
        result = Result(tuple(args), process.returncode, process.stdout, process.stderr.decode())
        return self._check(result, expect)

    # -- looking behind the command line's back --------------------------------

    def rows(self) -> list[Row]:
        return asyncio.run(read_rows(self.index_url))

    def row(self, path: str, version: int) -> Row:
        [found] = [r for r in self.rows() if (r.path, r.version) == (path, version)]
        return found

    def queued_at(self, path: str, version: int) -> datetime:
        """When a version was saved, as the index recorded it."""
        return self.row(path, version).queued_at

    @property
    def index_file(self) -> Path:
        assert self.postgres is None, "a PostgreSQL index is no file"
        return Path(self.index_url.removeprefix("sqlite+aiosqlite:///"))

    def delete_index(self) -> None:
        """Lose the index: its file, or every table of its PostgreSQL database."""
        if self.postgres is not None:
            asyncio.run(drop_every_table(self.index_url))
            return
        for suffix in ("", "-wal", "-shm"):
            self.index_file.with_name(self.index_file.name + suffix).unlink(missing_ok=True)

    def objects(self) -> dict[str, bytes]:
        """Every object in the store, by key."""
        if not self.in_s3:
            return local_store_objects(self.store_dir)
        assert self.moto is not None
        assert self.bucket is not None
        return self.moto.objects(self.bucket)

    def put_object(self, key: str, data: bytes) -> None:
        """Write bytes at a key behind bookstore's back (a damaged or a stray object)."""
        if not self.in_s3:
            target = self.store_dir / "data" / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            return
        assert self.moto is not None
        with self.moto.client() as s3:
            s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete_object(self, key: str) -> None:
        if not self.in_s3:
            (self.store_dir / "data" / key).unlink()
            return
        assert self.moto is not None
        with self.moto.client() as s3:
            s3.delete_object(Bucket=self.bucket, Key=key)

    def clone(self, base: Path) -> Archive:
        """An independent copy: files, index and (for S3) a new bucket with the same objects."""
        assert not self.options, "only server-filled archives are cloned"
        shutil.copytree(self.base, base, symlinks=True)
        bucket = self.bucket
        if self.moto is not None:
            bucket = new_bucket(self.moto)
            with self.moto.client() as s3:
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                for key in (item["Key"] for page in pages for item in page.get("Contents", [])):
                    source = {"Bucket": self.bucket, "Key": key}
                    s3.copy_object(Bucket=bucket, Key=key, CopySource=source)
        if self.postgres is not None:
            index_url = self.postgres.create_database(template=self.index_url)
        else:
            index_url = f"sqlite+aiosqlite:///{base / self.index_file.relative_to(self.base)}"
        return replace(
            self,
            base=base,
            index_url=index_url,
            store_dir=base / self.store_dir.relative_to(self.base),
            saves={path: list(saves) for path, saves in self.saves.items()},
            bucket=bucket,
        )


async def read_rows(index_url: str) -> list[Row]:
    index = IndexDatabase(index_url, create=False, read_only=True)
    try:
        async with index.reading() as session:
            found = await session.scalars(select(Version).order_by(Version.path, Version.number))
            return [
                Row(v.path, v.number, v.store_key, v.size, v.sha256, v.queued_at, v.label, v.pinned)
                for v in found
            ]
    finally:
        await index.close()


async def drop_every_table(index_url: str) -> None:
    index = IndexDatabase(index_url)
    try:
        async with index.writing() as session:
            await session.execute(text("DROP VIEW archive_latency"))
            await session.execute(text("DROP VIEW storage_by_path"))
            tables = (
                "versions, reserved_versions, pruned_objects, path_changes, leases, alembic_version"
            )
            await session.execute(text(f"DROP TABLE {tables}"))
    finally:
        await index.close()


def unreachable_s3() -> tuple[list[str], dict[str, str]]:
    """Options and variables that point the command line at S3 where nothing listens."""
    options = ["--storage", "s3", "--s3-bucket", "nowhere"]
    options += ["--s3-endpoint-url", f"http://127.0.0.1:{free_port()}"]
    credentials = {
        "BOOKSTORE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "BOOKSTORE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "BOOKSTORE_S3_REGION_NAME": REGION,
    }
    return options, credentials


def new_bucket(moto: MotoServer) -> str:
    name = f"cli-{uuid.uuid4().hex[:16]}"
    moto.make_bucket(name)
    return name


def concurrently(*calls: Callable[[], T]) -> list[T]:
    """Run independent subprocesses at once: each spends most of its time importing.

    Only for ``Archive.script``: runs in the test process swap process-wide state
    (streams, variables, working directory) and must not overlap.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (symlinks not followed), by relative path."""
    found = {}
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink():
                found[path.relative_to(directory).as_posix()] = path.read_bytes()
    return found


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_line_error(result: Result, code: int, *fragments: str) -> None:
    """An expected failure: the documented code, one line on stderr, no traceback."""
    assert result.code == code, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, str(result)
    assert lines[0].startswith("bookstore-history: error: "), str(result)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], str(result)


def table_rows(text: str) -> list[list[str]]:
    """The cells of a table printed for people (columns are 2+ spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


# -- fixtures: archives the server filled ---------------------------------------

_FILLED = pytest.StashKey[dict[str, Archive]]()
"""Each backend's filled archive, built once per session and shared by every module
(a session fixture imported into two modules would otherwise be built twice)."""


@pytest.fixture(scope="session", params=BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """A real server's archive of SAVES, one per backend, built once and only read."""
    built = request.config.stash.setdefault(_FILLED, {})
    if request.param not in built:
        built[request.param] = _fill(request, tmp_path_factory)
    return built[request.param]


def _fill(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    base = tmp_path_factory.mktemp(f"filled-{request.param}")
    data = base / "data" / "bookstore"
    index_url = f"sqlite+aiosqlite:///{data / 'index.sqlite'}"
    archive = Archive(request.param, base, index_url, data / "store")
    if request.param != "local":
        archive.moto = request.getfixturevalue("moto_server")
        archive.bucket = new_bucket(archive.moto)
    if request.param == "postgresql":
        archive.postgres = request.getfixturevalue("postgres")
        archive.index_url = archive.postgres.create_database()
    server = JupyterServer(
        base,
        env=archive.settings_env(),
        args=["--FileContentsManager.delete_to_trash=False"],
    )
    assert (server.root, server.data_dir, server.config_dir) == (
        archive.root,
        archive.data_dir,
        archive.config_dir,
    )
    with server:
        server.mkdir("reports")
        for path, contents in SAVES.items():
            for content in contents:
                server.save(path, content)
                archive.saves.setdefault(path, []).append((server.root / path).read_bytes())
        server.wait_archived()
        assert server.api("DELETE", "/api/contents/gone.ipynb").status_code == 204
    assert not (archive.root / "gone.ipynb").exists()
    assert len(archive.rows()) == TOTAL
    return archive


@pytest.fixture
def scratch(filled: Archive, tmp_path: Path) -> Archive:
    """A copy of the filled archive that a test may change."""
    return filled.clone(tmp_path / "archive")


# -- fixtures: a history with chosen save times, for prune ---------------------


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


HISTORY: dict[str, list[datetime]] = {
    "journal.ipynb": [
        utc("2025-01-15T10:00"),  # 1  Wed, ISO week 3, January
        utc("2025-02-10T09:00"),  # 2  Mon, week 7, February
        utc("2025-02-20T09:00"),  # 3  Thu, week 8, February
        utc("2025-03-03T08:00"),  # 4  Mon, week 10, March
        utc("2025-03-03T08:30"),  # 5  same hour as 4
        utc("2025-03-03T14:00"),  # 6  same day as 4 and 5
        utc("2025-03-05T10:00"),  # 7  Wed, week 10
        utc("2025-03-05T10:45"),  # 8  same hour as 7
        utc("2025-03-06T11:00"),  # 9  Thu, week 10: the latest
    ],
    "other/q.ipynb": [
        utc("2024-12-31T23:30"),  # 1  Tue, ISO week 2025-W01, December 2024
        utc("2025-01-01T00:15"),  # 2  Wed, 2025-W01, January 2025
        utc("2025-01-01T00:45"),  # 3  same hour as 2
    ],
}
HISTORY_TOTAL = sum(len(times) for times in HISTORY.values())
ALL_OF_HISTORY = {path: set(range(1, len(times) + 1)) for path, times in HISTORY.items()}


async def _build_history(store: Store, index_url: str) -> None:
    index = IndexDatabase(index_url)
    try:
        await index.migrate()
        for path, times in HISTORY.items():
            for number, moment in enumerate(times, start=1):
                content = json.dumps(notebook(f"{path} version {number}")).encode()
                record = ArchiveRecord(path, content, moment)
                row = await archive_record(store, index, PREFIX, HashedRecord.of(record))
                assert row is not None
                assert row.number == number
    finally:
        await index.close()
        await store.close()


def make_history(request: pytest.FixtureRequest, base: Path) -> Archive:
    """HISTORY archived by the library on ``request.param``'s backend (see BACKENDS);
    the command line is pointed at it by options and, for S3, variables."""
    base.mkdir()
    archive = Archive(
        request.param,
        base,
        f"sqlite+aiosqlite:///{base / 'history.sqlite'}",
        base / "history-store",
    )
    if request.param == "postgresql":
        archive.postgres = request.getfixturevalue("postgres")
        archive.index_url = archive.postgres.create_database()
    archive.options = ("--index-url", archive.index_url)
    store: Store
    if request.param == "local":
        archive.options += ("--local-store-dir", str(archive.store_dir))
        store = LocalStore(archive.store_dir)
    else:
        moto = archive.moto = request.getfixturevalue("moto_server")
        archive.bucket = new_bucket(moto)
        store = S3Store(
            archive.bucket,
            endpoint_url=moto.endpoint_url,
            region_name=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
        )
    asyncio.run(_build_history(store, archive.index_url))
    archive.root.mkdir()
    return archive


@pytest.fixture(params=["local", pytest.param("postgresql", marks=pytest.mark.postgres)])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Archive:
    """HISTORY indexed in SQLite (local store) and in PostgreSQL (S3), for prune's rules."""
    return make_history(request, tmp_path / "history")


@pytest.fixture(params=BACKENDS)
def any_history(request: pytest.FixtureRequest, tmp_path: Path) -> Archive:
    """HISTORY on every backend, for what prune does to the store."""
    return make_history(request, tmp_path / "history")


def survivors(archive: Archive) -> dict[str, set[int]]:
    """The versions left in the index, by path."""
    left: dict[str, set[int]] = {path: set() for path in HISTORY}
    for row in archive.rows():
        left.setdefault(row.path, set()).add(row.version)
    return left


def assert_store_matches_index(archive: Archive) -> None:
    """Pruned versions are gone from the store too, and nothing else is.

    Objects that are not versions (each path's labels and pins) are left aside.
    """
    versions = {key for key in archive.objects() if keys.parse_version_key(PREFIX, key)}
    assert versions == {row.store_key for row in archive.rows()}
