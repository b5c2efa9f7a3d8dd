"""The installed ``bookstore-history`` script, each run a process of its own, as people run it.

``test_cli.py`` runs every command in the test process; these few runs check
what only a real process shows: that the console script is installed and
starts, that it finds the server's store and index from the same Jupyter
directories and ``BOOKSTORE_*`` variables a user's shell has, that a notebook's
bytes come out of a real pipe unchanged, and that every documented exit code
comes with one line on stderr and no traceback, exactly as the shell sees it.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone

import pytest

from bookstore.core import keys
from tests.support.cli_archives import (
    CLI,
    COMMANDS,
    DIRTY,
    EACH_INDEX,
    PREFIX,
    SQLITE_ONLY,
    TOTAL,
    VERSIONS,
    Archive,
    concurrently,
    filled,
    one_line_error,
    scratch,
    unreachable_s3,
)
from tests.support.moto_server import free_port

__all__ = ["filled", "scratch"]  # fixtures, imported for pytest

pytestmark = pytest.mark.e2e

SECRET_URL = "postgresql+asyncpg://bob:s3cret@"


def test_the_main_help_lists_every_command_and_the_exit_codes() -> None:
    process = subprocess.run([CLI, "--help"], capture_output=True, text=True, check=False)
    assert process.returncode == 0, process.stderr
    assert "Example" in process.stdout
    listed = re.findall(r"^  (\w+)  ", process.stdout.split("Commands:")[1], re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS)
    for code in range(1, 9):
        assert f"{code} " in process.stdout.split("Exit codes:")[1]


def test_the_script_lists_shows_diffs_and_restores_a_real_servers_archive(
    scratch: Archive,
) -> None:
    """On every backend, configured only by the server's files and variables."""
    results = listed, shown, diff, restored = concurrently(
        lambda: scratch.script("list", "--json"),
        lambda: scratch.script("show", "reports/Q1 summary.ipynb", "1"),
        lambda: scratch.script("diff", "analysis.ipynb", "2", "3"),
        lambda: scratch.script("restore", "analysis.ipynb", "1"),
    )

    assert {s["path"]: s["versions"] for s in listed.json()} == VERSIONS
    assert shown.stdout == scratch.saves["reports/Q1 summary.ipynb"][0], "bytes, unchanged"
    assert diff.out.splitlines()[0] == "1 cell added, 1 changed"
    assert restored.out.startswith("restored version 1 of analysis.ipynb (saved ")
    assert (scratch.root / "analysis.ipynb").read_bytes() == scratch.saves["analysis.ipynb"][0]
    for result in results:
        assert result.stderr == "", str(result)


@SQLITE_ONLY
def test_every_documented_exit_code_comes_with_one_line_and_no_traceback(
    scratch: Archive,
) -> None:
    absent = scratch.base / "absent" / "index.sqlite"
    unreachable, credentials = unreachable_s3()
    damaged = scratch.row("analysis.ipynb", 2).store_key
    scratch.put_object(damaged, scratch.saves["analysis.ipynb"][1].replace(b"two", b"TWO"))
    (scratch.root / "analysis.ipynb").write_bytes(DIRTY)
    cases: list[tuple[list[str], int, str]] = [
        (["list", "--since", "yesterday"], 2, "--since"),
        (["lsit"], 2, "lsit"),
        (["show", "analysis.ipynb", "99"], 3, "no version 99 of 'analysis.ipynb'"),
        ([*unreachable, "show", "analysis.ipynb", "1"], 4, "cannot reach S3"),
        (["--index-url", f"sqlite+aiosqlite:///{absent}", "list"], 5, "does not exist"),
        (["--index-url", f"{SECRET_URL}127.0.0.1:{free_port()}/x", "list"], 5, "cannot be reached"),
        (["--index-url", "postgres ql://bob:s3cret@db/x", "list"], 8, "not a SQLAlchemy URL"),
        (["restore", "analysis.ipynb", "1"], 6, "--force"),
        (["show", "analysis.ipynb", "2"], 7, "damaged"),
        (["--storage", "s3", "list"], 8, "s3_bucket"),
    ]

    verify, *results = concurrently(
        lambda: scratch.script("verify", expect=None),
        *(lambda a=a: scratch.script(*a, expect=None, env=credentials) for a, _, _ in cases),
    )

    assert verify.code == 1, str(verify)
    assert verify.out.splitlines()[-1] == f"checked {TOTAL} versions: 1 problems"
    assert not verify.stderr.strip(), "problems are the report, on stdout"
    for (args, code, fragment), result in zip(cases, results, strict=True):
        one_line_error(result, code, fragment)
        assert result.stdout == b"", args
        assert "s3cret" not in result.stderr, "an index URL is shown without its password"
    assert (scratch.root / "analysis.ipynb").read_bytes() == DIRTY
    assert not absent.parent.exists(), "a missing index is not created"


@SQLITE_ONLY
def test_show_writes_a_version_that_is_not_utf8_byte_for_byte(scratch: Archive) -> None:
    latin1 = "café, naïve: ISO-8859-1 text\n".encode("latin-1")
    key = keys.version_key(PREFIX, "notes.txt", datetime(2026, 1, 1, tzinfo=timezone.utc))
    scratch.put_object(key, latin1)
    scratch.script("reindex")

    shown = scratch.script("show", "notes.txt", "1")

    assert shown.stdout == latin1
    assert shown.stderr == ""


@EACH_INDEX
def test_sql_passes_colons_and_percents_to_the_database_as_written(filled: Archive) -> None:
    result = filled.script("sql", "SELECT 'a :b' AS said, '100%' AS sure", "--json")
    assert result.json() == [{"said": "a :b", "sure": "100%"}]
