"""``restore``: write a version back to disk, never destroying unarchived work."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bookstore.cli.options import json_option, pass_runtime, path_argument, time_option
from bookstore.cli.runtime import Runtime, local_time, print_json, run

if TYPE_CHECKING:
    from bookstore.core.history_base import RestorePlan
    from bookstore.core.version_record import VersionRecord

__all__ = ["COMMANDS"]


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

    The file is replaced atomically, with exactly the bytes that were saved. A
    notebook nbformat would not validate is restored all the same, with a
    warning on stderr. A file whose current content is not archived is never
    overwritten unless --force, which archives that content as a new version
    first: a restore never destroys anything. Deleted notebooks can be
    restored too.

    \b
    Examples:
      bookstore-history restore analysis.ipynb 3
      bookstore-history restore analysis.ipynb --at 2026-11-24T17:00
      bookstore-history restore analysis.ipynb 3 --to analysis-v3.ipynb --dry-run
    """
    from bookstore.core.errors import Refused
    from bookstore.core.keys import normalize_path

    if version is not None and at is not None:
        raise click.UsageError("give either VERSION or --at, not both")
    source = normalize_path(path)
    root = runtime.notebook_root
    target_name = normalize_path(_relative(root, target) if target else path)
    destination = _inside(root, target_name)
    current = destination.read_bytes() if destination.is_file() else None

    async def work() -> tuple[VersionRecord, RestorePlan, int | None]:
        async with runtime.history() as history:
            row, content = await history.fetch(source, version, at)
            plan = await history.plan_restore(target_name, content, current)
            if plan.must_archive_current and not force:
                raise Refused(
                    f"{target_name} has content that is not archived yet; restoring would "
                    "lose it. Use --force to archive it as a new version first, or --to "
                    "another file"
                )
            archived = None
            if plan.must_archive_current and not dry_run:
                kept = await history.archive_now(target_name, current or b"")
                archived = kept.number if kept is not None else None
            return row, plan, archived

    row, plan, archived_first = run(work())
    what = f"version {row.number} of {source} (saved {local_time(row.queued_at)})"
    written = not (plan.up_to_date or dry_run)
    if written:
        from bookstore.store.durable import replace_atomically

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
    if plan.warning is not None:
        click.echo(f"bookstore-history: warning: {what}: {plan.warning}", err=True)
    if as_json:
        print_json(
            {
                "path": source,
                "version": row.number,
                "queued_at": row.queued_at,
                "target": target_name,
                "written": written,
                "dry_run": dry_run,
                "archived_first": archived_first,
                "message": message,
                "warning": plan.warning,
            }
        )
    else:
        click.echo(message)


def _relative(root: Path, target: str) -> str:
    """A ``--to`` given as an absolute path, as a path under ``root`` (or refused)."""
    from bookstore.core.errors import InvalidPath

    if not Path(target).is_absolute():
        return target
    resolved = Path(target).resolve()
    if not resolved.is_relative_to(root):
        raise InvalidPath(f"{target} is outside the notebooks' root directory {root}")
    return resolved.relative_to(root).as_posix()


def _inside(root: Path, name: str) -> Path:
    """``root/name`` as a file that can be written, refusing any location outside ``root``
    (symlinks included), a folder, or a path below a file."""
    from bookstore.core.errors import InvalidPath

    destination = root / name
    if not destination.resolve().is_relative_to(root):
        raise InvalidPath(f"{name!r} resolves to {destination.resolve()}, outside {root}")
    if destination.exists() and not destination.is_file():
        raise InvalidPath(f"{destination} is a folder, not a notebook; name a file")
    blocking = next((p for p in destination.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InvalidPath(f"{destination} cannot be written: {blocking} is a file")
    return destination


COMMANDS = [restore_command]
