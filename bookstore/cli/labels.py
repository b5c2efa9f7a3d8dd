"""``label``, ``pin``, ``unpin``: name versions and protect them from pruning."""

from __future__ import annotations

import click

from bookstore.cli.options import pass_runtime, path_argument
from bookstore.cli.runtime import Runtime, run

__all__ = ["COMMANDS"]


async def _update(runtime: Runtime, path: str, version: int, **changes: object) -> str:
    from bookstore.annotations import save_annotations
    from bookstore.history import find_version
    from bookstore.keys import normalize_path

    name = normalize_path(path)
    async with runtime.open() as opened, opened.index.writing() as session:
        row = await find_version(session, opened.workspace, name, version)
        for attribute, value in changes.items():
            setattr(row, attribute, value)
        await session.flush()
        # Kept in the store too, so an index rebuilt from the store keeps them.
        await save_annotations(opened.store, session, opened.workspace, name)
        return f"version {version} of {name}"


@click.command("label")
@path_argument
@click.argument("version", type=click.IntRange(min=1))
@click.argument("text")
@pass_runtime
def label_command(runtime: Runtime, path: str, version: int, text: str) -> None:
    """Name a version; labelled versions are kept by every prune. An empty TEXT removes it.

    Labels and pins are kept in the store as well as the index, so an index
    rebuilt from the store (reindex) has them too.

    \b
    Examples:
      bookstore-history label analysis.ipynb 7 "submitted to the journal"
      bookstore-history label analysis.ipynb 7 ""
    """
    which = run(_update(runtime, path, version, label=text or None))
    click.echo(f"labelled {which}: {text}" if text else f"removed the label of {which}")


@click.command("pin")
@path_argument
@click.argument("version", type=click.IntRange(min=1))
@pass_runtime
def pin_command(runtime: Runtime, path: str, version: int) -> None:
    """Pin a version so that no prune ever removes it.

    \b
    Example:
      bookstore-history pin analysis.ipynb 7
    """
    click.echo(f"pinned {run(_update(runtime, path, version, pinned=True))}")


@click.command("unpin")
@path_argument
@click.argument("version", type=click.IntRange(min=1))
@pass_runtime
def unpin_command(runtime: Runtime, path: str, version: int) -> None:
    """Let prune consider a pinned version again.

    \b
    Example:
      bookstore-history unpin analysis.ipynb 7
    """
    click.echo(f"unpinned {run(_update(runtime, path, version, pinned=False))}")


COMMANDS = [label_command, pin_command, unpin_command]
