"""``outbox`` and ``retry``: what waits on this machine to be archived, and what was set
aside because it can never be archived as it is."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bookstore.cli.options import json_option, pass_runtime
from bookstore.cli.runtime import Runtime, local_time, print_json, print_table

if TYPE_CHECKING:
    from bookstore.archiving.outbox import Outbox, SetAside
    from bookstore.core.view import PathView

__all__ = ["COMMANDS"]


def _outbox(runtime: Runtime) -> Outbox:
    """The configured outbox, read as it is: the command line claims nothing of it."""
    from bookstore.factory import open_outbox

    return open_outbox(runtime.settings)


def _size_of(file: Path) -> int:
    """A file's size; 0 once a server has archived and removed it."""
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


def _shown(view: PathView, path: str | None) -> str | None:
    """A stored path as the command names it, as text a terminal can print, even one that
    is not valid Unicode."""
    return None if path is None else view.name(path).encode("utf-8", "backslashreplace").decode()


def _describe(view: PathView, item: SetAside) -> dict[str, Any]:
    return {
        "path": _shown(view, item.path),
        "workspace": item.workspace,
        "queued_at": item.queued_time,
        "set_aside_at": item.set_aside_at,
        "reason": item.reason,
        "file": str(item.outbox_file),
    }


@click.command("outbox")
@json_option
@pass_runtime
def outbox_command(runtime: Runtime, as_json: bool) -> None:
    """Show the saves waiting in the outbox, and those set aside with the reason why.

    A save is set aside when it can never be archived as it is: a path too long
    for the store, a file that is no outbox entry. It is kept, never deleted;
    `bookstore-history retry` queues it again.

    \b
    Examples:
      bookstore-history outbox
      bookstore-history outbox --json
    """
    from bookstore.archiving.outbox import describe_size

    outbox, view = _outbox(runtime), runtime.view
    waiting, set_aside = outbox.pending(), outbox.set_aside_saves()
    if as_json:
        print_json(
            {
                "directory": str(outbox.directory),
                "waiting": [
                    {
                        "path": _shown(view, e.path),
                        "queued_at": e.queued_time,
                        "file": str(e.outbox_file),
                    }
                    for e in waiting
                ],
                "set_aside": [_describe(view, item) for item in set_aside],
            }
        )
        return
    size = sum(_size_of(entry.outbox_file) for entry in waiting)
    click.echo(
        f"{outbox.directory}: {len(waiting)} saves waiting to be archived "
        f"({describe_size(size)}), {len(set_aside)} set aside"
    )
    if set_aside:
        print_table(
            ["path", "saved at", "set aside at", "why"],
            [
                (
                    _shown(view, item.path) or item.outbox_file.name,
                    local_time(item.queued_time) if item.queued_time else "",
                    local_time(item.set_aside_at),
                    item.reason,
                )
                for item in set_aside
            ],
        )


@click.command("retry")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@pass_runtime
def retry_command(runtime: Runtime, paths: tuple[str, ...]) -> None:
    """Queue saves that were set aside again: all of them, or those of each PATH.

    Use it once what stopped them is mended (a newer bookstore, a setting, a
    store that holds longer keys). A running server tries them within a few
    seconds, otherwise the next server start does; a save that still cannot be
    archived is set aside again, with its reason.

    \b
    Examples:
      bookstore-history retry
      bookstore-history retry "reports/Q1 summary.ipynb"
    """
    from bookstore.core.errors import VersionNotFound

    outbox = _outbox(runtime)
    set_aside = outbox.set_aside_saves()
    view = runtime.view
    wanted = {view.stored(path.strip("/")): path.strip("/") for path in paths}
    chosen = [item for item in set_aside if not wanted or item.path in wanted]
    missing = sorted(wanted[path] for path in wanted.keys() - {item.path for item in chosen})
    if missing:
        raise VersionNotFound(
            f"no save of {', '.join(map(repr, missing))} is set aside in {outbox.directory}"
        )
    if not chosen:
        click.echo(f"nothing is set aside in {outbox.directory}")
        return
    count = outbox.requeue(chosen)
    click.echo(
        f"re-queued {count} saves; a running server tries them within a few seconds, "
        "otherwise the next start does (see `bookstore-history outbox`)"
    )


COMMANDS = [outbox_command, retry_command]
