"""Options and argument types that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from bookstore.cli.runtime import Runtime

__all__ = ["json_option", "parse_time", "pass_runtime", "path_argument", "time_option"]

F = TypeVar("F", bound=Callable[..., Any])


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; without a zone it is local time, as a person means it."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value if value.tzinfo is not None else value.astimezone()


def time_option(name: str, help: str) -> Callable[[F], F]:
    """An ISO-8601 time option (``2026-11-25``, ``2026-11-25T14:30``, ``...Z``)."""

    def convert(_ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not an ISO-8601 time (e.g. 2026-11-25 or 2026-11-25T14:30:00)",
                param=param,
            ) from None

    return click.option(name, metavar="TIME", callback=convert, help=help)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def path_argument(function: F) -> F:
    return click.argument("path")(function)


pass_runtime = click.make_pass_decorator(Runtime, ensure=True)
