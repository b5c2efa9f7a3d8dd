"""``label``, ``pin``, ``unpin``: name versions and protect them from pruning."""

from __future__ import annotations

from typing import Any

import click

from bookstore.cli.options import pass_runtime, path_argument
from bookstore.cli.runtime import Runtime, run

__all__ = ["COMMANDS"]


def _label_text(context: click.Context, parameter: click.Parameter, text: str) -> str:
    """The label, if ``label_problem`` accepts it (exit code 2 otherwise)."""
    from bookstore.core.labels import label_problem

    problem = label_problem(text)
    if problem is not None:
        raise click.BadParameter(problem, context, parameter)
    return text


async def _update(runtime: Runtime, path: str, version: int, **changes: Any) -> str:
    from bookstore.core.keys import normalize_path

    name = normalize_path(path)
    async with runtime.history() as history:
        await history.annotate(name, version, **changes)
    return f"version {version} of {name}"


@click.command("label")
@path_argument
@click.argument("version", type=click.IntRange(min=1))
@click.argument("text", callback=_label_text)
@pass_runtime
def label_command(runtime: Runtime, path: str, version: int, text: str) -> None:
    """Name a version; labelled versions are kept by every prune. An empty TEXT removes it.

    TEXT is one line of at most 1,024 characters.

    Labels and pins are kept in the store as well as the index, so an index
    rebuilt from the store (reindex) has them too.

    \b
    Examples:
      bookstore-history label analysis.ipynb 7 "submitted to the journal"
      bookstore-history label analysis.ipynb 7 ""
    """
    which = run(_update(runtime, path, version, label=text))
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
