"""Commands that read history: list, show, diff, stats, sql."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from bookstore.cli.options import json_option, pass_runtime, path_argument, time_option
from bookstore.cli.runtime import Runtime, local_time, print_json, print_table, run

if TYPE_CHECKING:
    from bookstore.core.diff import NotebookDiff
    from bookstore.core.version_record import VersionRecord

__all__ = ["COMMANDS"]


@click.command("list")
@click.argument("path", required=False)
@time_option("--since", "Only versions saved at or after TIME.")
@time_option("--until", "Only versions saved at or before TIME.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N rows (the newest).")
@click.option(
    "--deleted", is_flag=True, help="Only notebooks whose file is gone (restore brings it back)."
)
@click.option(
    "--all",
    "everywhere",
    is_flag=True,
    help="Every history on this machine, in every folder, named by absolute path.",
)
@json_option
@pass_runtime
def list_command(
    runtime: Runtime,
    path: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    deleted: bool,
    everywhere: bool,
    as_json: bool,
) -> None:
    """List archived notebooks, or the versions of one.

    Without PATH: every archived path in and under the notebook root (deleted
    notebooks included, marked so) with its number of versions, latest save and
    bytes; --deleted keeps only the notebooks whose file is gone, --all lists
    every folder's. With PATH: its versions, with their save time (local), size,
    archive latency and label, and the name each was saved under when the file
    was renamed since; a copy ("Duplicate") says what it was copied from.

    \b
    Examples:
      bookstore-history list
      bookstore-history list --deleted
      bookstore-history list --all
      bookstore-history list analysis.ipynb --since 2026-11-01
      bookstore-history list analysis.ipynb --json | jq '.[-1].sha256'
    """
    from bookstore.core.errors import VersionNotFound
    from bookstore.core.keys import normalize_path
    from bookstore.core.version_record import describe_path

    if (deleted or everywhere) and path is not None:
        raise click.UsageError("--deleted and --all list notebooks; give them without PATH")

    async def work() -> None:
        async with runtime.history() as history:
            if path is None:
                root = runtime.notebook_root
                found = [
                    (summary, (root / summary.path).is_file())
                    for summary in await history.paths(
                        since=since, until=until, everywhere=everywhere
                    )
                ]
                found = [(s, exists) for s, exists in found if not (deleted and exists)]
                found = found[:limit]
                if as_json:
                    print_json([describe_path(summary, exists) for summary, exists in found])
                    return
                print_table(
                    ["path", "versions", "latest save", "bytes", "stored", "file"],
                    [
                        (
                            s.path,
                            s.versions,
                            local_time(s.latest_queued_at),
                            s.total_bytes,
                            s.stored_bytes,
                            "" if exists else "deleted",
                        )
                        for s, exists in found
                    ],
                    right=["versions", "bytes", "stored"],
                )
                return
            name = normalize_path(path)
            rows = await history.versions(name, since=since, until=until, limit=limit, newest=True)
            if not rows and await history.latest(name) is None:
                raise VersionNotFound(f"{name!r} has no archived versions")
            if as_json:
                print_json([history.describe(row) for row in rows])
                return
            origin = await history.origin(name)
            if origin is not None:
                source = (
                    origin.path
                    if origin.version is None
                    else f"{origin.path} version {origin.version}"
                )
                click.echo(f"copied from {source} at {local_time(origin.copied_at)}")
            names = [history.saved_as(row) for row in rows]
            renamed = any(saved != name for saved in names)
            print_table(
                ["version", "saved at", "size", "latency ms", "label"]
                + (["saved as"] if renamed else []),
                [
                    (
                        row.number,
                        local_time(row.queued_at),
                        row.size,
                        f"{history.describe(row)['latency_ms']:.0f}",
                        _label(row),
                    )
                    + ((saved,) if renamed else ())
                    for row, saved in zip(rows, names, strict=True)
                ],
                right=["version", "size", "latency ms"],
            )

    run(work())


def _label(row: VersionRecord) -> str:
    pin = "📌 " if row.pinned else ""
    return f"{pin}{row.label or ''}".strip()


@click.command("show")
@path_argument
@click.argument("version", type=click.IntRange(min=1))
@click.option("--cells", is_flag=True, help="A readable summary of the cells instead of JSON.")
@pass_runtime
def show_command(runtime: Runtime, path: str, version: int, cells: bool) -> None:
    """Print one version of a notebook.

    The notebook's JSON goes to stdout exactly as it was saved, so it can be
    redirected to a file; --cells prints a summary of its cells instead.

    \b
    Examples:
      bookstore-history show analysis.ipynb 3 > analysis-v3.ipynb
      bookstore-history show analysis.ipynb 3 --cells
    """
    from bookstore.core.keys import normalize_path

    async def work() -> bytes:
        async with runtime.history() as history:
            _, content = await history.fetch(normalize_path(path), version)
            return content

    content = run(work())
    if not cells:
        click.echo(content, nl=False)  # the bytes as saved, whatever their encoding
        return
    for line in _cell_summary(content):
        click.echo(line)


def _cell_summary(content: bytes) -> list[str]:
    from bookstore.core.notebook import read_notebook_json, source_text

    try:
        notebook = read_notebook_json(content, "This version is not a notebook")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    lines = []
    for number, cell in enumerate(notebook["cells"], start=1):
        if not isinstance(cell, dict):
            continue
        text = source_text(cell.get("source", "")) or ""
        first = text.strip().splitlines()[0] if text.strip() else "(empty)"
        outputs = len(cell.get("outputs", []))
        suffix = f"  [{outputs} output{'s' if outputs != 1 else ''}]" if outputs else ""
        lines.append(f"{number:>4}  {cell.get('cell_type', '?'):<8}  {first[:80]}{suffix}")
    return lines


@click.command("diff")
@path_argument
@click.argument("v1", type=click.IntRange(min=1))
@click.argument("v2", type=click.IntRange(min=1), required=False)
@json_option
@pass_runtime
def diff_command(runtime: Runtime, path: str, v1: int, v2: int | None, as_json: bool) -> None:
    """Show what changed between two versions, cell by cell.

    Added, removed and changed cells with their source diffs; outputs are
    summarised, never dumped. Without V2, compares V1 with the file as it is now.

    \b
    Examples:
      bookstore-history diff analysis.ipynb 3 5
      bookstore-history diff analysis.ipynb 3
    """
    from bookstore.core.diff import diff_as_dict, render_text
    from bookstore.core.errors import VersionNotFound
    from bookstore.core.keys import normalize_path

    name = normalize_path(path)

    async def work() -> NotebookDiff:
        if v2 is not None:
            new: int | bytes = v2
        else:
            current = runtime.notebook_root / name
            if not current.is_file():
                raise VersionNotFound(f"{current} does not exist; name a second version")
            new = current.read_bytes()
        async with runtime.history() as history:
            return (await history.diff(name, v1, new)).difference

    difference = run(work())
    if as_json:
        print_json(diff_as_dict(difference))
        return
    click.echo(difference.summary())
    for line in render_text(difference):
        colour = {"+": "green", "-": "red", "#": "cyan"}.get(line[:1])
        click.secho(line, fg=colour)


@click.command("stats")
@click.argument("path", required=False)
@click.option(
    "--by",
    type=click.Choice(["path", "day"]),
    default="path",
    show_default=True,
    help="Group by notebook or by UTC day.",
)
@json_option
@pass_runtime
def stats_command(runtime: Runtime, path: str | None, by: str, as_json: bool) -> None:
    """Versions, bytes saved and stored, and archive latency (count, p50, p95, max).

    "bytes" is what the saves wrote; "stored" is what their versions cost in the
    store (each part counted once, against the version that first kept it), and
    "ratio" the one over the other. Latency is the time from a save to its
    version being indexed, read from the archive_latency view. Days are UTC days.

    \b
    Examples:
      bookstore-history stats
      bookstore-history stats --by day
      bookstore-history stats analysis.ipynb --json
    """
    from bookstore.core.keys import normalize_path

    async def work() -> list[dict[str, Any]]:
        async with runtime.open() as opened:
            return await opened.history.stats(by, normalize_path(path) if path else None)

    groups = run(work())
    if as_json:
        print_json(groups)
        return
    rows = [
        (
            g["group"],
            g["versions"],
            g["bytes"],
            g["stored_bytes"],
            _ratio(g["stored_bytes"], g["bytes"]),
            *(f"{g[k]:.0f}" for k in ("p50_ms", "p95_ms", "max_ms")),
        )
        for g in groups
    ]
    if len(groups) > 1:
        logical, stored = sum(g["bytes"] for g in groups), sum(g["stored_bytes"] for g in groups)
        versions = sum(g["versions"] for g in groups)
        rows.append(("total", versions, logical, stored, _ratio(stored, logical), "", "", ""))
    columns = ["versions", "bytes", "stored", "ratio", "p50 ms", "p95 ms", "max ms"]
    print_table([by, *columns], rows, right=columns)


def _ratio(stored: int, logical: int) -> str:
    """Stored bytes over saved bytes, as people read it: ``0.048x``."""
    return f"{stored / logical:.3f}x" if logical else ""


@click.command("sql")
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@json_option
@pass_runtime
def sql_command(runtime: Runtime, query: str, as_csv: bool, as_json: bool) -> None:
    """Run a read-only SQL query against the index.

    The connection itself is read-only: a statement that writes is refused by
    the database. Tables: versions; views: archive_latency, storage_by_path (see
    docs/index-schema.md).

    \b
    Examples:
      bookstore-history sql "SELECT path, count(*) FROM versions GROUP BY path"
      bookstore-history sql "SELECT * FROM archive_latency ORDER BY latency_ms DESC LIMIT 5" --csv
    """
    columns, rows = run(_read_only_query(runtime, query))
    if as_json:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
    elif as_csv:
        import csv
        import sys

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print_table(columns, rows)


async def _read_only_query(runtime: Runtime, query: str) -> tuple[list[str], list[Any]]:
    from bookstore.core.errors import IndexMissing
    from bookstore.factory import open_index
    from bookstore.index.queries import read_only_query

    index = open_index(runtime.settings, create=False, read_only=True)
    try:
        if not await index.exists():
            raise IndexMissing(f"the index {index.description} does not exist yet")
        async with index.reading() as session:
            return await read_only_query(session, query)
    finally:
        await index.close()


COMMANDS = [list_command, show_command, diff_command, stats_command, sql_command]
