"""What every command shares: the settings, the store and index they name, and output.

Settings are read as the server reads them (Jupyter config files on the Jupyter
config path, or ``--config FILE``; then ``BOOKSTORE_*`` variables), with the
command-line flags on top, so the CLI sees the same store and index as the server.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from bookstore.config import BookstoreSettings
    from bookstore.core.history_base import BaseHistory
    from bookstore.core.view import PathView
    from bookstore.history import History
    from bookstore.index import IndexDatabase
    from bookstore.store import Store

T = TypeVar("T")

__all__ = [
    "Opened",
    "Runtime",
    "json_list",
    "local_time",
    "print_json",
    "print_table",
    "progress",
    "run",
]


@dataclass(frozen=True)
class Opened:
    """The store and index a command works on."""

    settings: BookstoreSettings
    store: Store
    index: IndexDatabase
    view: PathView
    """How paths on the command line name histories: relative to the notebook root."""

    @property
    def workspace(self) -> str:
        """The workspace whose history the command shows: the user's own."""
        return self.settings.workspace

    @property
    def history(self) -> History:
        """The workspace's versions, through the same door the server uses.

        Without the server's diff limits: they keep one request from holding a
        server's event loop; a command has no one else to keep waiting.
        """
        from bookstore.core.diff import NO_LIMITS
        from bookstore.history import History

        return History(
            self.store, self.index, self.workspace, view=self.view, diff_limits=NO_LIMITS
        )


@dataclass
class Runtime:
    """Global options, turned into settings on first use."""

    config_file: str | None = None
    root_dir: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: BookstoreSettings | None = None
    _server_root: str | None = None

    @property
    def settings(self) -> BookstoreSettings:
        if self._settings is None:
            self._settings, self._server_root = _load_settings(self.config_file, self.overrides)
            self._settings.validate()
        return self._settings

    @property
    def notebook_root(self) -> Path:
        """Where notebook paths live on disk: ``--root-dir``, ServerApp.root_dir, or here."""
        _ = self.settings
        return Path(self.root_dir or self._server_root or os.getcwd()).expanduser().resolve()

    @property
    def view(self) -> PathView:
        """How paths on the command line name histories: relative to the notebook root."""
        return self.settings.path_view(self.notebook_root)

    @asynccontextmanager
    async def history(self) -> AsyncIterator[BaseHistory]:
        """The user's history: read through the archive service when ``service_url`` is
        set (with the Hub token in ``JUPYTERHUB_API_TOKEN``), else from the store and index."""
        url = self.settings.service_url
        if url is None:
            async with self.open() as opened:
                yield opened.history
            return
        from bookstore.archiving.service_client import ServiceClient
        from bookstore.core.diff import NO_LIMITS
        from bookstore.core.errors import ConfigurationError
        from bookstore.service_history import ServiceHistory

        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not token:
            raise ConfigurationError(
                f"the archive service at {url} needs a token: set JUPYTERHUB_API_TOKEN to one "
                "from the Hub's token page (/hub/token), with the scope "
                "access:services!service=bookstore"
            )
        client = ServiceClient(url, token)
        try:
            # Paths relative to the notebook root, as the user's server names them.
            yield ServiceHistory(client, diff_limits=NO_LIMITS)
        finally:
            client.close()

    @asynccontextmanager
    async def open(self, *, migrate: bool = True) -> AsyncIterator[Opened]:
        """The store and a migrated index, closed afterwards; the index must exist."""
        from bookstore.core.errors import ConfigurationError, IndexMissing, IndexUnavailable
        from bookstore.factory import open_index, open_store

        settings = self.settings
        if settings.service_url is not None:
            raise ConfigurationError(
                "this command works on the store and index, which only the archive service "
                f"at {settings.service_url} holds: run it where the service runs, without "
                "service_url"
            )
        index = open_index(settings, create=False)
        if not await index.exists():
            await index.close()
            raise IndexMissing(
                f"the index {index.description} does not exist yet: start the server to "
                "archive something, or rebuild it from the store with "
                "`bookstore-history reindex`"
            )
        store = open_store(settings)
        try:
            if migrate:
                try:
                    await index.migrate()
                except OSError as exc:  # asyncpg connects with the socket's own errors
                    raise IndexUnavailable(
                        f"the index {index.description} cannot be reached: {exc}"
                    ) from exc
            yield Opened(settings, store, index, self.view)
        finally:
            await store.close()
            await index.close()


def _load_settings(
    config_file: str | None, overrides: dict[str, Any]
) -> tuple[BookstoreSettings, str | None]:
    from jupyter_core.application import JupyterApp
    from traitlets.config import Config

    from bookstore.config import BookstoreSettings

    class ServerConfig(JupyterApp):
        """Reads the config files jupyter server reads, and nothing else."""

        name = "jupyter-server"
        config_file_name = "jupyter_server_config"

    reader = ServerConfig()
    if config_file:
        if not Path(config_file).is_file():
            raise click.BadParameter(f"{config_file} does not exist", param_hint="--config")
        reader.config_file = str(Path(config_file).resolve())
    reader.load_config_file(suppress_errors=False)
    config = Config(reader.config)
    for name, value in overrides.items():
        config.BookstoreSettings[name] = value
    root = config.get("ServerApp", {}).get("root_dir")
    return BookstoreSettings(config=config), (str(root) if root else None)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one command's async work to completion."""
    return asyncio.run(coroutine)


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


@contextmanager
def json_list(head: dict[str, Any], key: str) -> Iterator[Callable[[Any], None]]:
    """One JSON document on stdout, ``head`` then a list under ``key`` written item by item,
    so a long answer is never held in memory whole."""
    opening = json.dumps(head, indent=2, ensure_ascii=False, default=_json_default)[:-2]
    click.echo(f"{opening},\n  {json.dumps(key)}: [", nl=False)
    separator = "\n    "

    def write(item: Any) -> None:
        nonlocal separator
        text = json.dumps(item, ensure_ascii=False, default=_json_default)
        click.echo(f"{separator}{text}", nl=False)
        separator = ",\n    "

    yield write
    click.echo("\n  ]\n}")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Sequence[str] = ()
) -> None:
    """Human output: an aligned table (numbers right-aligned)."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console().print(table)


def progress(description: str, total: int | None) -> Progress:
    """A progress bar on stderr, so stdout stays clean for ``--json``; none off a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    stderr = console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    bar.add_task(description, total=total)
    return bar


def local_time(moment: datetime) -> str:
    """A timestamp in the user's local time zone, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
