"""A throwaway PostgreSQL server from Debian's binaries, on a free loopback port.

Each test gets a database of its own from ``create_database``. Run as root (as
CI is), the server runs as the ``postgres`` user, since PostgreSQL refuses root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

from tests.support.moto_server import free_port

__all__ = ["PostgresServer"]


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: the index tests run on it too "
            "(apt-get install -y postgresql)"
        )
    return Path(found[-1]).parent


class PostgresServer:
    """One PostgreSQL server in a temporary directory; ``close()`` removes it all.

    Tests run it with fsync off, for speed; ``durable=True`` leaves fsync on, as
    a benchmark must. ``settings`` are more server settings (``max_connections``).
    """

    def __init__(
        self,
        *,
        durable: bool = False,
        settings: Mapping[str, str] | None = None,
        password: str | None = None,
    ) -> None:
        self.bin = _binaries()
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="bookstore-pg-"))
        self.data = self.base / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.base, "postgres")
        options = {"listen_addresses": "127.0.0.1", "fsync": "on" if durable else "off"}
        options.update(settings or {})
        settings_flags = [f"-c {name}={value}" for name, value in options.items()]
        self._options = " ".join([f"-p {self.port} -k {self.base}", *settings_flags])
        self.password = password
        auth = ["--auth=trust"]
        if password is not None:
            # Connections over TCP must give the password; only the socket trusts.
            (self.base / "password").write_text(password)
            if self._as_postgres:
                shutil.chown(self.base / "password", "postgres")
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256"]
            auth.append(f"--pwfile={self.base / 'password'}")
        self._run("initdb", "-D", str(self.data), "-U", "bookstore", *auth, "-E", "UTF8")
        self.start()

    def start(self) -> None:
        """Start the server (again, after ``stop``), and wait until it accepts connections."""
        log = str(self.base / "server.log")
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            log,
            "-w",
            "-t",
            "60",
            "-o",
            self._options,
            "start",
        )

    def stop(self) -> None:
        """Stop the server at once, as a crash would; ``start`` brings it back with its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.base)

    def url(self, database: str = "postgres") -> str:
        login = "bookstore" if self.password is None else f"bookstore:{self.password}"
        return f"postgresql+asyncpg://{login}@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str | None = None) -> str:
        """A new database, empty or a copy of the one at URL ``template``; its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        statement = f"CREATE DATABASE {name}"
        if template is not None:
            statement += f" TEMPLATE {template.rsplit('/', 1)[1]}"
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "bookstore"]
        subprocess.run(
            [*psql, "-d", "postgres", "-q", "-c", statement],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": self.password or ""},
        )
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
