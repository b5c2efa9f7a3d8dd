"""Looking at what a real server archived, behind bookstore's back: its index file and store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.jupyter_process import JupyterServer
from tests.support.moto_server import s3_env
from tests.support.tcp_proxy import TcpProxy

__all__ = ["index_rows", "s3_server", "stored_objects"]


def index_rows(server: JupyterServer) -> list[tuple[str, int, str, int, str]]:
    """(path, version, store_key, size, sha256) of every indexed version, in order."""
    with sqlite3.connect(f"file:{server.index_file}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT path, version, store_key, size, sha256 FROM versions ORDER BY path, version"
        ).fetchall()


def stored_objects(server: JupyterServer) -> dict[str, bytes]:
    data = server.store_dir / "data"
    return {
        path.relative_to(data).as_posix(): path.read_bytes()
        for path in data.rglob("*")
        if path.is_file()
    }


def s3_server(base: Path, bucket: str, proxy: TcpProxy) -> JupyterServer:
    env = {**s3_env(bucket, proxy.endpoint_url), "BOOKSTORE_RETRY_MAX_DELAY": "1"}
    return JupyterServer(base, env=env)
