"""Commands that keep the archive healthy: reindex, verify, prune, repack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bookstore.cli.options import json_option, pass_runtime
from bookstore.cli.runtime import Runtime, json_list, local_time, print_json, progress, run

T = TypeVar("T")

if TYPE_CHECKING:
    from bookstore.archiving.part_collection import Garbage
    from bookstore.core.retention import Decision, RetentionPolicy

__all__ = ["COMMANDS"]


@click.command("reindex")
@json_option
@pass_runtime
def reindex_command(runtime: Runtime, as_json: bool) -> None:
    """Rebuild the index from a listing of the store and the objects' metadata.

    Safe to run at any time and again: it adds versions the index lacks,
    fixes rows whose size or sha256 disagree with the store, and reports rows
    whose object is missing. Creates the index if it does not exist. Exits 1
    when rows had to be fixed or objects are missing.

    \b
    Example:
      bookstore-history reindex
    """
    from bookstore.archiving.maintenance import reindex
    from bookstore.factory import open_index, open_store

    settings = runtime.settings

    async def work() -> Any:
        store, index = open_store(settings), open_index(settings)
        try:
            await index.migrate()
            with progress("reading the store", None) as bar:
                task = bar.task_ids[0]
                return await reindex(
                    store,
                    index,
                    settings.workspace,
                    on_listed=lambda total: bar.update(task, total=total),
                    tick=lambda: bar.advance(task),
                )
        finally:
            await store.close()
            await index.close()

    report = run(work())
    if as_json:
        print_json(
            {
                "added": report.added,
                "fixed": report.fixed,
                "missing": report.missing,
                "ignored": report.ignored,
            }
        )
    else:
        click.echo(
            f"added {len(report.added)} versions, fixed {len(report.fixed)}, "
            f"{len(report.missing)} indexed versions missing from the store"
        )
        for key in report.missing:
            click.echo(f"missing: {key}")
        for key in report.fixed:
            click.echo(f"fixed: {key}")
    if not report.clean:
        raise SystemExit(1)


@click.command("verify")
@click.option(
    "--sample", type=click.IntRange(min=1), help="Check N random versions instead of all."
)
@json_option
@pass_runtime
def verify_command(runtime: Runtime, sample: int | None, as_json: bool) -> None:
    """Check that every indexed version exists in the store and matches its sha256.

    Also reports orphans: objects in the store that no index row points to.
    Exits 1 when anything is wrong.

    \b
    Examples:
      bookstore-history verify
      bookstore-history verify --sample 100 --json
    """
    from bookstore.archiving.maintenance import verify

    report = run(_counted(runtime, "verifying", partial(verify, sample=sample)))
    if as_json:
        print_json(
            {
                "checked": report.checked,
                "ok": report.ok,
                "problems": [problem._asdict() for problem in report.problems],
            }
        )
    else:
        for problem in report.problems:
            click.echo(f"{problem.kind}: {problem.store_key} ({problem.detail})")
        verdict = "all intact" if report.ok else f"{len(report.problems)} problems"
        click.echo(f"checked {report.checked} versions: {verdict}")
    if not report.ok:
        raise SystemExit(1)


@click.command("prune")
@click.option("--keep-last", type=int, metavar="N", help="Keep the N newest versions.")
@click.option("--keep-hourly", type=int, metavar="N", help="Keep the newest of each of N hours.")
@click.option("--keep-daily", type=int, metavar="N", help="Keep the newest of each of N days.")
@click.option("--keep-weekly", type=int, metavar="N", help="Keep the newest of each of N weeks.")
@click.option("--keep-monthly", type=int, metavar="N", help="Keep the newest of each of N months.")
@click.option("--keep-yearly", type=int, metavar="N", help="Keep the newest of each of N years.")
@click.option(
    "--keep-within",
    metavar="DURATION",
    help="Keep every version within DURATION (e.g. 2d, 1y6m) of the path's latest.",
)
@click.option("--path", "path_glob", metavar="GLOB", help="Only paths matching GLOB.")
@click.option("--dry-run", is_flag=True, help="Show what would be kept and why; delete nothing.")
@json_option
@pass_runtime
def prune_command(
    runtime: Runtime,
    /,
    path_glob: str | None,
    dry_run: bool,
    as_json: bool,
    **rules: Any,
) -> None:
    """Delete old versions by a retention policy, as restic's forget does.

    A version is kept if any rule keeps it; labelled and pinned versions are
    always kept; a policy with no rule is refused. Periods (hours, days, ISO
    weeks, months) are in local time and only count when they hold a version.
    The index stops pointing at a version before its object is deleted.

    \b
    Examples:
      bookstore-history prune --keep-last 10 --keep-daily 7 --dry-run
      bookstore-history prune --keep-within 30d --keep-monthly 12 --path 'reports/*'
    """
    from bookstore.archiving.maintenance import Pruner, finish_interrupted_prunes, plan_prune
    from bookstore.archiving.part_collection import collect_parts
    from bookstore.core.retention import EmptyPolicy, RetentionPolicy
    from bookstore.index import queries

    try:
        policy = RetentionPolicy.from_options(**rules)  # the --keep-* options
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    if policy.is_empty:
        raise EmptyPolicy()

    async def work() -> tuple[int, int, Garbage | None]:
        """Decide and remove path by path, printing as it goes: memory holds one path;
        then delete the parts no version names any more."""
        async with runtime.open() as opened:
            if not dry_run:
                await finish_interrupted_prunes(opened.store, opened.index, opened.workspace)
            pruner = Pruner(opened.store, opened.index, opened.workspace)
            chosen = None if path_glob is None else opened.view.stored(path_glob)
            plans = plan_prune(opened.index, opened.workspace, policy, path_glob=chosen)
            async with opened.index.reading() as session:
                width = await queries.longest_path(session, opened.workspace)
            decided = dropped = 0
            with _decisions_printer(policy, dry_run, as_json, width) as show:
                async for plan in plans:
                    for decision in plan.decisions:
                        show(opened.view.name(plan.path), decision)
                    decided += len(plan.decisions)
                    dropped += len(plan.removed())
                    if not dry_run:
                        await pruner.add(plan)
                await pruner.flush()
            if dry_run:
                return decided, dropped, None
            return decided, dropped, await collect_parts(opened.store, opened.workspace)

    decided, dropped, freed = run(work())
    if as_json:
        return
    if freed is None:
        click.echo(f"would remove {dropped} of {decided} versions (dry run)")
        return
    click.echo(f"removed {dropped} of {decided} versions")
    if (blocked := freed.blocked()) is not None:
        click.echo(f"bookstore-history: warning: {blocked}", err=True)
    if freed.parts:
        click.echo(
            f"freed {len(freed.parts)} parts no remaining version uses ({freed.bytes} bytes)"
        )


@contextmanager
def _decisions_printer(
    policy: RetentionPolicy, dry_run: bool, as_json: bool, path_width: int
) -> Iterator[Callable[[str, Decision], None]]:
    """Print each decision as it is made: a JSON document, or an aligned table."""
    if as_json:
        head = {"policy": policy.describe(), "dry_run": dry_run}
        with json_list(head, "decisions") as write:
            yield lambda path, d: write(
                {
                    "path": path,
                    "version": d.version.number,
                    "queued_at": d.version.queued_at,
                    "keep": d.keep,
                    "reasons": list(d.reasons),
                }
            )
        return
    click.echo(policy.describe())
    width = max(path_width, len("path"))

    def row(path: str, number: object, saved: str, verdict: str, why: str) -> None:
        click.echo(f"{path:<{width}}  {number!s:>7}  {saved:<19}  {verdict:<6}  {why}".rstrip())

    row("path", "version", "saved at", "", "why")
    yield lambda path, d: row(
        path,
        d.version.number,
        local_time(d.version.queued_at),
        "keep" if d.keep else "remove",
        ", ".join(d.reasons),
    )


@click.command("repack")
@click.option("--dry-run", is_flag=True, help="Count what would be rewritten; write nothing.")
@json_option
@pass_runtime
def repack_command(runtime: Runtime, dry_run: bool, as_json: bool) -> None:
    """Rewrite the versions earlier releases kept whole in the current, smaller form.

    Each version keeps its key, number, label and bytes: a notebook becomes a
    manifest and parts shared with its other versions, any other file is
    compressed. Safe to interrupt and to run again (what is done is skipped),
    beside running servers and prunes. Versions whose bytes do not match their
    sha256 are left as they are (verify names them).

    \b
    Examples:
      bookstore-history repack --dry-run
      bookstore-history repack
    """
    from bookstore.archiving.repacking import repack

    report = run(_counted(runtime, "repacking", partial(repack, dry_run=dry_run)))
    if as_json:
        print_json({"dry_run": dry_run, **asdict(report)})
        return
    for key in report.damaged:
        click.echo(f"left as it is, damaged: {key}")
    if dry_run:
        click.echo(
            f"would repack {report.repacked} versions ({report.bytes_before} bytes); "
            f"{report.kept} are in the current form (dry run)"
        )
        return
    ratio = f" ({report.bytes_after / report.bytes_before:.3f}x)" if report.bytes_before else ""
    click.echo(
        f"repacked {report.repacked} versions: {report.bytes_before} bytes now stored in "
        f"{report.bytes_after}{ratio}; {report.kept} were in the current form already"
    )


async def _counted(runtime: Runtime, doing: str, work: Callable[..., Awaitable[T]]) -> T:
    """``work(store, index, workspace, on_total=, tick=)`` on the configured archive, with
    a progress bar that counts its items."""
    async with runtime.open() as opened:
        with progress(doing, None) as bar:
            task = bar.task_ids[0]
            return await work(
                opened.store,
                opened.index,
                opened.workspace,
                on_total=lambda total: bar.update(task, total=total),
                tick=lambda: bar.advance(task),
            )


COMMANDS = [reindex_command, verify_command, prune_command, repack_command]
