"""``bookstore-history`` on archives the real server filled, run in the test process.

Every command runs through click's ``CliRunner`` (``Archive.cli``), with the same
Jupyter directories and ``BOOKSTORE_*`` variables as the server and none of the
test runner's, so it finds the server's store and index the way a user's shell
would; stdout, stderr and the exit code are checked as a shell sees them. What
needs the installed script in a process of its own is in ``test_cli_e2e.py``;
the archives (``filled``, ``scratch``, ``history``) are described in
``tests/support/cli_archives.py``.

Every command that reaches the store (list, show, diff, restore, reindex,
verify, prune) runs on every backend. What the index alone decides (stats, sql,
labels, list's filters, restore's choices of version, target and refusal, error
messages) runs once per kind of index: on the local store with SQLite, and on
S3 with PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.cli_archives import (
    ALL_OF_HISTORY,
    COMMANDS,
    DIRTY,
    EACH_INDEX,
    HISTORY_TOTAL,
    PNG,
    PREFIX,
    SQLITE_ONLY,
    TOTAL,
    VERSIONS,
    Archive,
    any_history,
    assert_store_matches_index,
    filled,
    history,
    invoke,
    one_line_error,
    scratch,
    sha256,
    survivors,
    table_rows,
    tree,
    unreachable_s3,
)

__all__ = ["any_history", "filled", "history", "scratch"]  # fixtures, imported for pytest

# -- help ---------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = invoke([command, "--help"])
    assert result.code == 0, str(result)
    assert "Example" in result.out
    assert f"bookstore-history {command}" in result.out


# -- list ---------------------------------------------------------------------


def test_list_shows_every_archived_path_including_a_deleted_one(filled: Archive) -> None:
    table, as_json = filled.cli("list"), filled.cli("list", "--json")

    summaries = {s["path"]: s for s in as_json.json()}
    assert {path: s["versions"] for path, s in summaries.items()} == VERSIONS
    for path, saves in filled.saves.items():
        assert summaries[path]["total_bytes"] == sum(len(save) for save in saves)
    assert not (filled.root / "gone.ipynb").exists()
    rows = {cells[0]: cells for cells in table_rows(table.out)[1:]}
    assert sorted(rows) == sorted(VERSIONS)
    for path, count in VERSIONS.items():
        assert rows[path][1] == str(count)


JSON_FIELDS = {"path", "version", "store_key", "size", "sha256", "queued_at", "archived_at"}


@EACH_INDEX
def test_list_of_one_path_shows_every_version_with_its_details(filled: Archive) -> None:
    table, as_json = (
        filled.cli("list", "analysis.ipynb"),
        filled.cli("list", "analysis.ipynb", "--json"),
    )

    versions = as_json.json()
    saves = filled.saves["analysis.ipynb"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    for entry, save, row in zip(versions, saves, filled.rows()[:3], strict=True):
        assert set(entry) >= JSON_FIELDS
        assert entry["path"] == row.path == "analysis.ipynb"
        assert entry["store_key"] == row.store_key
        assert entry["store_key"].startswith(f"{PREFIX}/analysis.ipynb/@")
        assert entry["size"] == len(save)
        assert entry["sha256"] == sha256(save)
        queued = datetime.fromisoformat(entry["queued_at"])
        assert queued == filled.queued_at(row.path, row.version)
        assert queued <= datetime.fromisoformat(entry["archived_at"])
    header, *lines = table_rows(table.out)
    assert header[:3] == ["version", "saved at", "size"]
    assert [(line[0], line[2]) for line in lines] == [
        (str(v["version"]), str(v["size"])) for v in versions
    ]


@EACH_INDEX
def test_list_since_until_and_limit_select_by_save_time(filled: Archive) -> None:
    first, second = (filled.queued_at("analysis.ipynb", n).isoformat() for n in (1, 2))
    in_zulu = filled.queued_at("analysis.ipynb", 2).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    report_saved = filled.queued_at("reports/Q1 summary.ipynb", 1).isoformat()

    def numbers(*args: str) -> list[int]:
        return [v["version"] for v in filled.cli("list", *args, "--json").json()]

    def paths(*args: str) -> list[str]:
        return [s["path"] for s in filled.cli("list", *args, "--json").json()]

    results = [
        numbers("analysis.ipynb", "--since", second),
        numbers("analysis.ipynb", "--until", in_zulu),
        numbers("analysis.ipynb", "--since", second, "--until", second),
        numbers("analysis.ipynb", "--limit", "2"),
        numbers("analysis.ipynb", "--since", first, "--limit", "1"),
        paths("--since", report_saved),
        paths("--limit", "1"),
    ]
    assert results == [
        [2, 3],
        [1, 2],
        [2],
        [2, 3],
        [3],
        ["gone.ipynb", "reports/Q1 summary.ipynb"],
        ["gone.ipynb"],
    ]


# -- show ---------------------------------------------------------------------


def test_show_prints_exactly_the_bytes_the_server_wrote(filled: Archive) -> None:
    # An image output; non-ASCII text in a directory with a space. (A deleted
    # notebook's bytes are checked by test_a_deleted_notebook_can_be_restored.)
    wanted = [
        (path, number, filled.saves[path][number - 1])
        for path, number in [("analysis.ipynb", 3), ("reports/Q1 summary.ipynb", 1)]
    ]
    results = [filled.cli("show", path, str(number)) for path, number, _ in wanted]
    for (path, number, content), result in zip(wanted, results, strict=True):
        assert result.stdout == content, f"{path} version {number}"


@EACH_INDEX
def test_show_cells_summarises_the_cells(filled: Archive) -> None:
    result = filled.cli("show", "analysis.ipynb", "3", "--cells")
    assert table_rows(result.out) == [
        ["1", "code", "print('two', 0)"],
        ["2", "code", "show_plot()", "[1 output]"],
        ["3", "markdown", "# Results"],
    ]
    assert PNG[:40] not in result.out


# -- diff ---------------------------------------------------------------------


@EACH_INDEX
def test_diff_names_changed_cells_and_shows_source_lines(filled: Archive) -> None:
    result = filled.cli("diff", "analysis.ipynb", "2", "3")
    lines = result.out.splitlines()
    assert lines[0] == "1 cell added, 1 changed"
    assert "## cell 2 (code) changed" in lines
    assert "-print('two', 1)" in lines
    assert "+show_plot()" in lines
    assert "## cell 3 (markdown) added" in lines
    assert "+# Results" in lines
    assert not any(line.startswith("## cell 1 ") for line in lines), "cell 1 did not change"
    assert any("image/png" in line for line in lines if line.startswith("outputs:"))
    assert PNG[:40] not in result.out
    assert "iVBOR" not in result.out


def test_diff_without_a_second_version_compares_with_the_file_on_disk(scratch: Archive) -> None:
    edited = json.loads(scratch.saves["analysis.ipynb"][2])
    edited["cells"][0]["source"] = "print('edited on disk')"
    (scratch.root / "analysis.ipynb").write_text(json.dumps(edited))

    lines = scratch.cli("diff", "analysis.ipynb", "3").out.splitlines()

    assert lines[0] == "1 cell changed"
    assert lines[1:] == [
        "## cell 1 (code) changed",
        "@@ -1 +1 @@",
        "-print('two', 0)",
        "+print('edited on disk')",
    ]


# -- stats --------------------------------------------------------------------


@EACH_INDEX
def test_stats_count_every_version_by_path_and_by_day(filled: Archive) -> None:
    by_path, by_day = filled.cli("stats", "--json"), filled.cli("stats", "--by", "day", "--json")
    groups = {g["group"]: g for g in by_path.json()}
    assert {path: g["versions"] for path, g in groups.items()} == VERSIONS
    for path, saves in filled.saves.items():
        assert groups[path]["bytes"] == sum(len(save) for save in saves)
        assert 0 <= groups[path]["p50_ms"] <= groups[path]["p95_ms"] <= groups[path]["max_ms"]
    days = {g["group"]: g["versions"] for g in by_day.json()}
    assert sum(days.values()) == TOTAL == len(filled.rows())
    assert set(days) == {row.queued_at.date().isoformat() for row in filled.rows()}


# -- sql ----------------------------------------------------------------------

QUERY = "SELECT path, count(*) AS n FROM versions GROUP BY path ORDER BY path"


@EACH_INDEX
def test_sql_prints_a_select_as_a_table_csv_or_json(filled: Archive) -> None:
    table, as_csv, as_json = (
        filled.cli("sql", QUERY),
        filled.cli("sql", QUERY, "--csv"),
        filled.cli("sql", QUERY, "--json"),
    )
    expected = sorted(VERSIONS.items())
    assert table_rows(table.out) == [["path", "n"], *([p, str(n)] for p, n in expected)]
    assert list(csv.reader(io.StringIO(as_csv.out))) == [
        ["path", "n"],
        *([p, str(n)] for p, n in expected),
    ]
    assert as_json.json() == [{"path": p, "n": n} for p, n in expected]


WRITES = [
    "/* tidy up */ delete from versions",
    "WITH doomed AS (SELECT id FROM versions) DELETE FROM versions "
    "WHERE id IN (SELECT id FROM doomed)",
    "INSERT INTO versions (workspace, path, version, store_key, size, sha256, queued_at, "
    "archived_at) VALUES ('workspace', 'x.ipynb', 1, 'k', 0, '', '2026-01-01', '2026-01-01')",
    "UPDATE versions SET label = 'sneaky'",
    "DROP TABLE versions",
]


@EACH_INDEX
def test_sql_writes_are_refused_by_the_database(scratch: Archive) -> None:
    before = scratch.rows()
    results = [scratch.cli("sql", statement, expect=None) for statement in WRITES]
    refusal = "read-only transaction" if scratch.postgres else "readonly database"
    for result in results:
        one_line_error(result, 5, refusal)
    assert scratch.rows() == before


@SQLITE_ONLY
def test_sql_cannot_create_a_database_file_with_attach(scratch: Archive) -> None:
    created = scratch.base / "attached.sqlite"
    result = scratch.cli("sql", f"ATTACH DATABASE '{created}' AS other", expect=None)
    one_line_error(result, 5)
    assert not created.exists(), "the read-only sql command created a file"


# -- restore ------------------------------------------------------------------


@EACH_INDEX
def test_restore_writes_a_version_back_to_its_path(scratch: Archive) -> None:
    target = scratch.root / "analysis.ipynb"
    rows, objects = scratch.rows(), scratch.objects()

    result = scratch.cli("restore", "analysis.ipynb", "1")

    assert target.read_bytes() == scratch.saves["analysis.ipynb"][0]
    assert result.out.startswith("restored version 1 of analysis.ipynb (saved ")
    assert (scratch.rows(), scratch.objects()) == (rows, objects), "its content was archived"


@EACH_INDEX
def test_restore_to_another_path_leaves_the_original_alone(scratch: Archive) -> None:
    saves = scratch.saves["analysis.ipynb"]
    scratch.cli("restore", "analysis.ipynb", "2", "--to", "copies/analysis v2.ipynb")
    assert (scratch.root / "copies/analysis v2.ipynb").read_bytes() == saves[1]
    assert (scratch.root / "analysis.ipynb").read_bytes() == saves[2]


@EACH_INDEX
def test_restore_refuses_to_overwrite_unarchived_content(scratch: Archive) -> None:
    target = scratch.root / "analysis.ipynb"
    target.write_bytes(DIRTY)
    rows, objects = scratch.rows(), scratch.objects()

    refused = scratch.cli("restore", "analysis.ipynb", "1", expect=None)

    one_line_error(refused, 6, "--force")
    assert target.read_bytes() == DIRTY
    assert (scratch.rows(), scratch.objects()) == (rows, objects)


def test_restore_with_force_archives_the_current_content_first(scratch: Archive) -> None:
    target = scratch.root / "analysis.ipynb"
    target.write_bytes(DIRTY)
    rows, objects = scratch.rows(), scratch.objects()

    report = scratch.cli("restore", "analysis.ipynb", "1", "--force", "--json").json()

    assert (report["version"], report["archived_first"], report["written"]) == (1, 4, True)
    assert target.read_bytes() == scratch.saves["analysis.ipynb"][0]
    new_rows = scratch.rows()
    assert [r for r in new_rows if r not in rows] == [scratch.row("analysis.ipynb", 4)]
    kept = scratch.row("analysis.ipynb", 4)
    assert (kept.sha256, kept.size) == (sha256(DIRTY), len(DIRTY))
    after = scratch.objects()
    assert {k: v for k, v in after.items() if k in objects} == objects, "nothing is lost"
    assert after[kept.store_key] == DIRTY


@EACH_INDEX
def test_restore_dry_run_changes_nothing(scratch: Archive) -> None:
    (scratch.root / "analysis.ipynb").write_bytes(DIRTY)
    files, rows, objects = tree(scratch.root), scratch.rows(), scratch.objects()

    result = scratch.cli("restore", "analysis.ipynb", "1", "--force", "--dry-run")

    assert result.out.startswith("would write version 1 of analysis.ipynb")
    assert "its current content would be archived first" in result.out
    assert (tree(scratch.root), scratch.rows(), scratch.objects()) == (files, rows, objects)


@EACH_INDEX
def test_restore_at_a_time_picks_the_newest_version_at_or_before_it(scratch: Archive) -> None:
    first, second, third = (scratch.queued_at("analysis.ipynb", n) for n in (1, 2, 3))
    between = second + (third - second) / 2

    exact = scratch.cli(
        "restore", "analysis.ipynb", "--at", second.isoformat(), "--dry-run", "--json"
    )
    middle = scratch.cli(
        "restore", "analysis.ipynb", "--at", between.isoformat(), "--to", "at.ipynb"
    )
    early = scratch.cli(
        "restore", "analysis.ipynb", "--at", (first - timedelta(seconds=1)).isoformat(), expect=None
    )

    assert exact.json()["version"] == 2
    assert (scratch.root / "at.ipynb").read_bytes() == scratch.saves["analysis.ipynb"][1]
    assert middle.out.startswith("restored version 2 of analysis.ipynb")
    one_line_error(early, 3, "analysis.ipynb")


def test_a_deleted_notebook_can_be_restored(scratch: Archive) -> None:
    assert not (scratch.root / "gone.ipynb").exists()
    scratch.cli("restore", "gone.ipynb")
    assert (scratch.root / "gone.ipynb").read_bytes() == scratch.saves["gone.ipynb"][-1]


@EACH_INDEX
@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_restore_refuses_a_target_outside_the_root(
    scratch: Archive, tmp_path: Path, kind: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (scratch.root / "escape").symlink_to(elsewhere, target_is_directory=True)
    target = {
        "parent": "../outside.ipynb",
        "absolute": str(elsewhere / "outside.ipynb"),
        "symlink": "escape/outside.ipynb",
    }[kind]
    files = tree(scratch.root)

    result = scratch.cli("restore", "analysis.ipynb", "1", "--to", target, expect=None)

    one_line_error(result, 3)
    assert tree(scratch.root) == files, "nothing may be written inside the root"
    assert tree(elsewhere) == {}
    assert not (scratch.base / "outside.ipynb").exists()


@EACH_INDEX
@pytest.mark.parametrize("target", ["reports", "analysis.ipynb/inside.ipynb"])
def test_restore_to_a_directory_or_below_a_file_fails_in_one_line(
    scratch: Archive, target: str
) -> None:
    files = tree(scratch.root)

    result = scratch.cli("restore", "analysis.ipynb", "1", "--to", target, expect=None)

    one_line_error(result, 3, target)
    assert tree(scratch.root) == files


# -- reindex ------------------------------------------------------------------


def test_reindex_rebuilds_a_deleted_index_exactly_and_is_idempotent(scratch: Archive) -> None:
    before = scratch.rows()
    scratch.delete_index()
    if scratch.postgres is None:
        one_line_error(scratch.cli("list", expect=None), 5, "reindex")

    first = scratch.cli("reindex", "--json").json()
    assert sorted(first["added"]) == sorted(row.store_key for row in before)
    assert (first["fixed"], first["missing"]) == ([], [])
    after = scratch.rows()
    assert {row.identity for row in after} == {row.identity for row in before}
    assert [(r.store_key, r.size) for r in after] == [(r.store_key, r.size) for r in before]

    again = scratch.cli("reindex")
    assert again.out.startswith("added 0 versions, fixed 0, 0 indexed versions missing")
    assert scratch.rows() == after


def test_reindex_keeps_version_numbers_across_pruned_gaps(scratch: Archive) -> None:
    scratch.cli("pin", "analysis.ipynb", "1")
    scratch.cli("prune", "--keep-last", "1", "--path", "analysis.ipynb")
    before = scratch.rows()
    assert [r.version for r in before if r.path == "analysis.ipynb"] == [1, 3]
    scratch.delete_index()

    scratch.cli("reindex")

    after = scratch.rows()
    assert {row.identity for row in after} == {row.identity for row in before}
    assert [r.version for r in after if r.path == "analysis.ipynb"] == [1, 3]


# -- verify -------------------------------------------------------------------


def test_verify_a_clean_archive(filled: Archive) -> None:
    report = filled.cli("verify", "--json").json()
    assert report == {"checked": TOTAL, "ok": True, "problems": []}


def test_verify_finds_missing_corrupt_and_orphaned_objects(scratch: Archive) -> None:
    missing = scratch.row("analysis.ipynb", 1).store_key
    corrupt = scratch.row("analysis.ipynb", 2).store_key
    orphan = f"{PREFIX}/stray.ipynb/@20260101T000000.000000Z.ipynb"
    scratch.delete_object(missing)
    scratch.put_object(corrupt, scratch.saves["analysis.ipynb"][1].replace(b"two", b"TWO"))
    scratch.put_object(orphan, scratch.saves["gone.ipynb"][0])

    as_json = scratch.cli("verify", "--json", expect=1)
    text = scratch.cli("verify", expect=1)
    show = scratch.cli("show", "analysis.ipynb", "2", expect=None)

    report = as_json.json()
    assert (report["checked"], report["ok"]) == (TOTAL, False)
    assert [(p["kind"], p["store_key"]) for p in report["problems"]] == [
        ("corrupt", corrupt),
        ("missing", missing),
        ("orphan", orphan),
    ]
    lines = text.out.splitlines()
    assert f"missing: {missing} (version 1 of analysis.ipynb)" in lines
    assert any(line.startswith(f"corrupt: {corrupt} (") for line in lines)
    assert any(line.startswith(f"orphan: {orphan} (") for line in lines)
    assert lines[-1] == f"checked {TOTAL} versions: 3 problems"
    one_line_error(show, 7, "damaged")


# -- prune --------------------------------------------------------------------

RULES = [
    (["--keep-last", "3"], {"journal.ipynb": {7, 8, 9}, "other/q.ipynb": {1, 2, 3}}),
    (["--keep-hourly", "4"], {"journal.ipynb": {5, 6, 8, 9}, "other/q.ipynb": {1, 3}}),
    (["--keep-daily", "4"], {"journal.ipynb": {3, 6, 8, 9}, "other/q.ipynb": {1, 3}}),
    (["--keep-weekly", "3"], {"journal.ipynb": {2, 3, 9}, "other/q.ipynb": {3}}),
    (["--keep-monthly", "3"], {"journal.ipynb": {1, 3, 9}, "other/q.ipynb": {1, 3}}),
    (["--keep-yearly", "1"], {"journal.ipynb": {9}, "other/q.ipynb": {3}}),
    (["--keep-within", "3d"], {"journal.ipynb": {6, 7, 8, 9}, "other/q.ipynb": {1, 2, 3}}),
    (
        ["--keep-last", "1", "--keep-monthly", "2"],
        {"journal.ipynb": {3, 9}, "other/q.ipynb": {1, 3}},
    ),
]


@pytest.mark.parametrize(
    ("policy", "expected"), RULES, ids=[" ".join(policy) for policy, _ in RULES]
)
def test_prune_keeps_exactly_what_each_rule_says(
    history: Archive, policy: list[str], expected: dict[str, set[int]]
) -> None:
    report = history.cli("prune", *policy, "--json").json()

    assert survivors(history) == expected
    assert_store_matches_index(history)
    assert report["dry_run"] is False
    for decision in report["decisions"]:
        kept = decision["version"] in expected[decision["path"]]
        assert decision["keep"] is kept
        assert bool(decision["reasons"]) is kept, decision


def test_prune_dry_run_deletes_nothing_and_says_why(history: Archive) -> None:
    rows, objects = history.rows(), history.objects()

    result = history.cli("prune", "--keep-last", "3", "--keep-monthly", "2", "--dry-run")

    assert (history.rows(), history.objects()) == (rows, objects)
    lines = result.out.splitlines()
    assert lines[0].startswith("keep 3 newest, 2 monthly")
    decisions = {(cells[0], cells[1]): cells[3:] for cells in table_rows(result.out)[2:-1]}
    assert decisions[("journal.ipynb", "9")] == ["keep", "last 3, monthly 2025-03"]
    assert decisions[("journal.ipynb", "3")] == ["keep", "monthly 2025-02"]
    assert decisions[("journal.ipynb", "1")] == ["remove"]
    assert lines[-1] == f"would remove 5 of {HISTORY_TOTAL} versions (dry run)"


def test_labelled_and_pinned_versions_always_survive(history: Archive) -> None:
    history.cli("label", "journal.ipynb", "2", "submitted")
    history.cli("pin", "journal.ipynb", "4")

    report = history.cli("prune", "--keep-last", "3", "--json").json()

    assert survivors(history)["journal.ipynb"] == {2, 4, 7, 8, 9}
    assert_store_matches_index(history)
    reasons = {
        d["version"]: d["reasons"] for d in report["decisions"] if d["path"] == "journal.ipynb"
    }
    assert reasons[2] == ["labelled 'submitted'"]
    assert reasons[4] == ["pinned"]


@pytest.mark.parametrize(
    "policy",
    [[], ["--keep-last", "0", "--keep-within", "0d"], ["--path", "no-such-*"]],
    ids=["no option", "rules turned off", "no matching path"],
)
def test_an_empty_policy_is_refused(history: Archive, policy: list[str]) -> None:
    rows, objects = history.rows(), history.objects()
    one_line_error(history.cli("prune", *policy, expect=None), 6, "empty policy")
    assert (history.rows(), history.objects()) == (rows, objects)


def test_prune_path_glob_limits_it_to_matching_paths(history: Archive) -> None:
    history.cli("prune", "--keep-last", "1", "--path", "other/*")
    assert survivors(history) == {**ALL_OF_HISTORY, "other/q.ipynb": {3}}
    assert_store_matches_index(history)


def test_prune_periods_are_in_local_time(history: Archive) -> None:
    # In UTC, q's three saves span two days (see RULES); in New York all were on Dec 31.
    history.cli("prune", "--keep-daily", "2", "--path", "other/*", env={"TZ": "America/New_York"})
    assert survivors(history)["other/q.ipynb"] == {3}


def test_after_a_prune_verify_is_clean(any_history: Archive) -> None:
    any_history.cli("prune", "--keep-last", "2", "--keep-monthly", "3")

    assert survivors(any_history) == {"journal.ipynb": {1, 3, 8, 9}, "other/q.ipynb": {1, 2, 3}}
    assert_store_matches_index(any_history)
    report = any_history.cli("verify", "--json").json()
    assert report == {"checked": 7, "ok": True, "problems": []}


# -- label, pin, unpin --------------------------------------------------------


@EACH_INDEX
def test_labels_and_pins_show_in_list(scratch: Archive) -> None:
    scratch.cli("label", "analysis.ipynb", "2", "first draft")
    scratch.cli("pin", "analysis.ipynb", "3")
    table, as_json = (
        scratch.cli("list", "analysis.ipynb"),
        scratch.cli("list", "analysis.ipynb", "--json"),
    )
    assert [(v["label"], v["pinned"]) for v in as_json.json()] == [
        (None, False),
        ("first draft", False),
        (None, True),
    ]
    lines = {cells[0]: cells for cells in table_rows(table.out)[1:]}
    assert lines["2"][-1] == "first draft"
    assert lines["3"][-1] == "📌"

    scratch.cli("unpin", "analysis.ipynb", "3")
    scratch.cli("label", "analysis.ipynb", "2", "")
    after = scratch.cli("list", "analysis.ipynb", "--json").json()
    assert [(v["label"], v["pinned"]) for v in after] == [(None, False)] * 3


@SQLITE_ONLY
def test_a_label_the_rule_refuses_is_a_usage_error_and_changes_nothing(scratch: Archive) -> None:
    for text, reason in [
        ("two\nlines", "one line of text"),
        ("x" * 1025, "at most 1,024 characters"),
        ("   ", "only white space"),
    ]:
        result = scratch.cli("label", "analysis.ipynb", "2", text, expect=2)
        assert reason in result.stderr
    listed = scratch.cli("list", "analysis.ipynb", "--json").json()
    assert [v["label"] for v in listed] == [None] * 3


# -- expected failures ----------------------------------------------------------


@SQLITE_ONLY
def test_expected_failures_are_one_line_with_the_documented_code(
    filled: Archive, tmp_path: Path
) -> None:
    absent = tmp_path / "absent" / "index.sqlite"
    unreachable, credentials = unreachable_s3()
    cases: list[tuple[list[str], int, str]] = [
        (["list", "nope.ipynb"], 3, "'nope.ipynb' has no archived versions"),
        (["show", "analysis.ipynb", "99"], 3, "no version 99 of 'analysis.ipynb'"),
        (["restore", "analysis.ipynb", "99"], 3, "no version 99 of 'analysis.ipynb'"),
        (["diff", "gone.ipynb", "1"], 3, "gone.ipynb does not exist"),
        (["--index-url", f"sqlite+aiosqlite:///{absent}", "list"], 5, "does not exist"),
        (["--index-url", f"sqlite+aiosqlite:///{absent}", "sql", "SELECT 1"], 5, "not exist"),
        ([*unreachable, "show", "analysis.ipynb", "1"], 4, "cannot reach S3"),
        (["--storage", "s3", "list"], 8, "s3_bucket"),
    ]
    results = [filled.cli(*args, expect=None, env=credentials) for args, _, _ in cases]
    for (args, code, fragment), result in zip(cases, results, strict=True):
        one_line_error(result, code, fragment)
        assert result.stdout == b"", args
    assert not absent.parent.exists(), "a missing index is not created"


@EACH_INDEX
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["list", "--since", "yesterday"], "--since"),
        (["restore", "analysis.ipynb", "--at", "noon"], "--at"),
        (["prune", "--keep-within", "3x"], "--keep-within"),
    ],
    ids=["since", "at", "keep-within"],
)
def test_a_bad_option_value_is_a_one_line_usage_error(
    filled: Archive, args: list[str], option: str
) -> None:
    result = filled.cli(*args, expect=2)

    assert "Traceback" not in result.stderr
    assert result.stdout == b""
    [error] = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert option in error
    assert result.stderr.strip().splitlines() == [error], "one line, as every expected failure"


def test_labels_and_pins_survive_an_index_rebuilt_from_the_store(scratch: Archive) -> None:
    scratch.cli("label", "analysis.ipynb", "2", "submitted")
    scratch.cli("pin", "analysis.ipynb", "1")
    scratch.delete_index()
    scratch.cli("reindex")
    rebuilt = scratch.cli("list", "analysis.ipynb", "--json").json()
    assert [(v["label"], v["pinned"]) for v in rebuilt] == [
        (None, True),
        ("submitted", False),
        (None, False),
    ]
    scratch.cli("prune", "--keep-last", "1")
    assert [v["version"] for v in scratch.cli("list", "analysis.ipynb", "--json").json()] == [
        1,
        2,
        3,
    ]
    scratch.cli("verify")
