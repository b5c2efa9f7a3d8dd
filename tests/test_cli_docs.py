"""The command line documents itself: help with examples, and a reference that matches it."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from bookstore.cli.main import main
from bookstore.cli.reference import render_reference

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_committed_reference_matches_the_commands() -> None:
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == render_reference(), (
        "docs/cli.md is stale: run `python -m bookstore.cli.reference > docs/cli.md`"
    )


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example_and_a_docs_entry(name: str) -> None:
    command = main.commands[name]
    context = click.Context(command, info_name=name)
    help_text = command.get_help(context)
    assert command.help
    assert len(command.help.split()) >= 8
    assert "Example" in help_text
    assert f"## {name}\n" in (DOCS / "cli.md").read_text(encoding="utf-8")
