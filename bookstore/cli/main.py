"""The ``bookstore-history`` command group, its global options, and its exit codes.

Every expected failure is translated here, and only here, into one line on
stderr and a documented exit code; a traceback means a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from bookstore._version import __version__
from bookstore.cli import browse, labels, maintain, outbox, restore
from bookstore.cli.runtime import Runtime

__all__ = ["EXIT_CODES", "main"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = {
    0: "success",
    1: "verify or reindex found problems",
    2: "wrong usage: an unknown command, option or value",
    3: "no such path, version or time in the index",
    4: "the store or the archive service cannot be reached, or refused the request",
    5: "the index does not exist or cannot be reached",
    6: "refused: going ahead would lose data (see --force) or prune everything",
    7: "a stored version is damaged, or a notebook cannot be compared",
    8: "a setting has a value bookstore cannot use",
}


def _exit_code(exc: Exception) -> int | None:
    from sqlalchemy.exc import DBAPIError

    from bookstore.core import errors

    codes: list[tuple[type[Exception], int]] = [
        (errors.VersionNotFound, 3),
        (errors.InvalidPath, 3),
        (errors.StoreError, 4),
        (errors.ServiceUnavailable, 4),
        (errors.ServiceRefused, 4),
        (errors.IndexMissing, 5),
        (errors.IndexUnavailable, 5),
        (DBAPIError, 5),
        (errors.Refused, 6),
        (errors.CorruptVersion, 7),
        (errors.NotComparable, 7),
        (errors.ConfigurationError, 8),
    ]
    return next((code for kind, code in codes if isinstance(exc, kind)), None)


class HistoryGroup(click.Group):
    """A click group that turns bookstore's errors into a sentence and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Usage errors, too, are one line (click would print the whole usage block)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            click.echo(f"bookstore-history: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("bookstore-history: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            code = _exit_code(exc)
            if code is None:
                raise
            click.echo(f"bookstore-history: error: {_sentence(exc)}", err=True)
            ctx.exit(code)


def _sentence(exc: Exception) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):
        return f"the index cannot be used: {str(exc.orig).strip() or type(exc.orig).__name__}"
    return str(exc)


_OVERRIDES: list[tuple[str, Any]] = [
    ("storage", click.Choice(["local", "s3"])),
    ("index_url", "URL"),
    ("local_store_dir", "DIR"),
    ("s3_bucket", "NAME"),
    ("s3_endpoint_url", "URL"),
    ("workspace_prefix", "PREFIX"),
    ("service_url", "URL"),
]
"""Settings a flag may override for one command: ``--index-url`` for ``index_url``."""


def _override_options(function: F) -> F:
    """A ``--<setting>`` flag for each of ``_OVERRIDES``, remembered on the ``Runtime``."""

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(Runtime).overrides[str(param.name)] = value
        return value

    for name, kind in reversed(_OVERRIDES):
        function = click.option(
            f"--{name.replace('_', '-')}",
            name,
            type=kind if isinstance(kind, click.ParamType) else None,
            metavar=None if isinstance(kind, click.ParamType) else kind,
            expose_value=False,
            callback=remember,
            help=f"Override BookstoreSettings.{name}.",
        )(function)
    return function


@click.group(
    cls=HistoryGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: "
    + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
    + ".",
)
@click.version_option(__version__, prog_name="bookstore-history")
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="A jupyter_server_config.py/.json to read instead of those on the Jupyter config path.",
)
@click.option(
    "--root-dir",
    metavar="DIR",
    help="The notebooks' root directory [default: ServerApp.root_dir, or the current directory].",
)
@_override_options
@click.pass_context
def main(ctx: click.Context, config_file: str | None, root_dir: str | None) -> None:
    """List, show, diff and restore the archived versions of your notebooks.

    Reads the same configuration as the Jupyter server (config files,
    BOOKSTORE_* variables), so it sees the same store and index.

    \b
    Examples:
      bookstore-history list
      bookstore-history list analysis.ipynb
      bookstore-history diff analysis.ipynb 3
      bookstore-history restore analysis.ipynb 3 --to analysis-v3.ipynb
    """
    runtime = ctx.ensure_object(Runtime)
    runtime.config_file = config_file
    runtime.root_dir = root_dir


# Each command module imports its heavy dependencies only when the command runs.
for _module in (browse, restore, labels, maintain, outbox):
    for _command in _module.COMMANDS:
        main.add_command(_command)
