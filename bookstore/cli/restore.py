"""``restore``: write a version back to disk, never destroying unarchived work."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import click

from bookstore.cli.options import json_option, pass_runtime, path_argument, time_option
from bookstore.cli.runtime import Opened, Runtime, local_time, print_json, run

__all__ = ["COMMANDS"]


class RestorePlan(NamedTuple):
    """What a restore does: which version, and what happens to the file there now."""

    version: int
    saved_at: datetime
    content: bytes
    up_to_date: bool
    """The file already holds exactly this version."""
    must_archive_current: bool
    """The file holds content no version has; --force archives it first."""


@click.command("restore")
@path_argument
@click.argument("version", type=click.IntRange(min=1), required=False)
@time_option("--at", "Restore the newest version saved at or before TIME.")
@click.option("--to", "target", metavar="TARGET", help="Write to TARGET instead of PATH.")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite a file whose content is not archived yet (it is archived first).",
)
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@json_option
@pass_runtime
def restore_command(
    runtime: Runtime,
    path: str,
    version: int | None,
    at: datetime | None,
    target: str | None,
    force: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Write a version of PATH back to disk (the latest, VERSION, or the one at --at).

    The file is replaced atomically. A file whose current content is not
    archived is never overwritten unless --force, which archives that content
    as a new version first: a restore never destroys anything. Deleted
    notebooks can be restored too.

    \b
    Examples:
      bookstore-history restore analysis.ipynb 3
      bookstore-history restore analysis.ipynb --at 2026-11-24T17:00
      bookstore-history restore analysis.ipynb 3 --to analysis-v3.ipynb --dry-run
    """
    from bookstore.errors import Refused
    from bookstore.keys import normalize_path

    if version is not None and at is not None:
        raise click.UsageError("give either VERSION or --at, not both")
    source = normalize_path(path)
    root = runtime.notebook_root
    target_name = normalize_path(_relative(root, target) if target else path)
    destination = _inside(root, target_name)
    current = destination.read_bytes() if destination.is_file() else None

    async def work() -> tuple[RestorePlan, int | None]:
        async with runtime.open() as opened:
            plan = await _plan(opened, source, version, at, target_name, current)
            if plan.must_archive_current and not force:
                raise Refused(
                    f"{target_name} has content that is not archived yet; restoring would "
                    "lose it. Use --force to archive it as a new version first, or --to "
                    "another file"
                )
            archived = None
            if plan.must_archive_current and not dry_run:
                archived = await _archive_current(opened, target_name, current or b"")
            return plan, archived

    plan, archived_first = run(work())
    what = f"version {plan.version} of {source} (saved {local_time(plan.saved_at)})"
    written = not (plan.up_to_date or dry_run)
    if written:
        from bookstore.fsutil import replace_atomically

        destination.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(destination, plan.content)
    if plan.up_to_date:
        message = f"{target_name} already holds {what}; nothing to do"
    elif dry_run:
        first = "; its current content would be archived first" * plan.must_archive_current
        message = f"would write {what} to {destination}{first}"
    else:
        kept = f"; its previous content is version {archived_first}" if archived_first else ""
        message = f"restored {what} to {destination}{kept}"
    if as_json:
        print_json(
            {
                "path": source,
                "version": plan.version,
                "saved_at": plan.saved_at,
                "target": target_name,
                "written": written,
                "dry_run": dry_run,
                "archived_first": archived_first,
                "message": message,
            }
        )
    else:
        click.echo(message)


def _relative(root: Path, target: str) -> str:
    """A ``--to`` given as an absolute path, as a path under ``root`` (or refused)."""
    from bookstore.errors import InvalidPath

    if not Path(target).is_absolute():
        return target
    resolved = Path(target).resolve()
    if not resolved.is_relative_to(root):
        raise InvalidPath(f"{target} is outside the notebooks' root directory {root}")
    return resolved.relative_to(root).as_posix()


def _inside(root: Path, name: str) -> Path:
    """``root/name`` as a file that can be written, refusing any location outside ``root``
    (symlinks included), a folder, or a path below a file."""
    from bookstore.errors import InvalidPath

    destination = root / name
    if not destination.resolve().is_relative_to(root):
        raise InvalidPath(f"{name!r} resolves to {destination.resolve()}, outside {root}")
    if destination.exists() and not destination.is_file():
        raise InvalidPath(f"{destination} is a folder, not a notebook; name a file")
    blocking = next((p for p in destination.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InvalidPath(f"{destination} cannot be written: {blocking} is a file")
    return destination


async def _plan(
    opened: Opened,
    source: str,
    version: int | None,
    at: datetime | None,
    target_name: str,
    current: bytes | None,
) -> RestorePlan:
    from bookstore.history import fetch_version, find_version
    from bookstore.index import queries

    async with opened.index.reading() as session:
        row = await find_version(session, opened.workspace, source, version, at)
        archived = current is None or (
            await queries.version_with_sha256(
                session, opened.workspace, target_name, hashlib.sha256(current).hexdigest()
            )
            is not None
        )
    content = await fetch_version(opened.store, row)
    up_to_date = current == content
    return RestorePlan(
        row.version, row.queued_at, content, up_to_date, not (up_to_date or archived)
    )


async def _archive_current(opened: Opened, path: str, content: bytes) -> int | None:
    from bookstore.archiver import archive_record
    from bookstore.record import ArchiveRecord, HashedRecord

    record = ArchiveRecord(path, content, datetime.now(timezone.utc))
    hashed = HashedRecord.of(record)
    row = await archive_record(opened.store, opened.index, opened.workspace, hashed)
    return row.version if row else None


COMMANDS = [restore_command]
