"""Looking at what a real server archived, behind bookstore's back: its index file and store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from bookstore.config import FILES_WORKSPACE
from bookstore.core.view import PathView
from tests.support.jupyter_process import JupyterServer
from tests.support.moto_server import s3_env
from tests.support.stored import as_read
from tests.support.tcp_proxy import TcpProxy

__all__ = [
    "index_rows",
    "local_store_objects",
    "s3_server",
    "sqlite_file",
    "sqlite_index_rows",
    "stored_objects",
]


def sqlite_index_rows(
    database: Path, root: Path | None = None
) -> list[tuple[str, int, str, int, str]]:
    """(path, version, store_key, size, sha256) of every indexed version, in order,
    read from the SQLite file itself. With ``root``, the paths of histories kept by
    file under it are named as a server rooted there names them: relative to it."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT workspace, path, version, store_key, size, sha256 FROM versions "
            "ORDER BY path, version"
        ).fetchall()
    view = PathView.of_root(root) if root is not None else None
    return [
        (
            view.name(path) if view is not None and workspace == FILES_WORKSPACE else path,
            version,
            key,
            size,
            sha256,
        )
        for workspace, path, version, key, size, sha256 in rows
    ]


def sqlite_file(index_url: str) -> Path:
    """The file of a SQLite ``index_url``."""
    url = make_url(index_url)
    assert url.get_backend_name() == "sqlite", index_url
    assert url.database, index_url
    return Path(url.database)


def local_store_objects(store_dir: Path) -> dict[str, bytes]:
    """Every object in a local store, by key, as a reader gets it back (``stored.as_read``)."""
    data = store_dir / "data"
    found = {}
    for path in data.rglob("*"):
        if path.is_file():
            key = path.relative_to(data).as_posix()
            meta = store_dir / "meta" / f"{key}.json"
            found[key] = (path.read_bytes(), json.loads(meta.read_text()) if meta.exists() else {})
    return as_read(found)


def index_rows(server: JupyterServer) -> list[tuple[str, int, str, int, str]]:
    """(path, version, store_key, size, sha256) of every version in a real server's index,
    paths named as the server names them."""
    return sqlite_index_rows(server.index_file, server.root)


def stored_objects(server: JupyterServer) -> dict[str, bytes]:
    """Every object in a real server's local store."""
    return local_store_objects(server.store_dir)


def s3_server(base: Path, bucket: str, proxy: TcpProxy) -> JupyterServer:
    env = {**s3_env(bucket, proxy.endpoint_url), "BOOKSTORE_RETRY_MAX_DELAY": "1"}
    return JupyterServer(base, env=env)
