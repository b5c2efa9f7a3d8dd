"""The documentation stays true: settings, links, SQL, the status JSON and the tests it cites."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from jupyter_core.paths import jupyter_data_dir

from bookstore.config import _LEGACY_VARIABLES, BookstoreSettings
from bookstore.index import IndexDatabase, queries
from tests.support.inprocess import Run

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
SETTINGS = sorted(BookstoreSettings.class_traits(config=True))
SQL_PAGES = ["index-schema.md", "sql-cookbook.md"]

_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*$", re.M)


def read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return _FENCE.sub("", text)


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for heading in _HEADING.findall(prose(read(page))):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


# -- configuration.md: every setting, its variables and its default ----------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BOOKSTORE_* or JPYNB_* variable, so settings take their defaults."""
    for name in {*(v for n in SETTINGS for v in BookstoreSettings.variables(n))}:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_is_documented_with_its_variables(name: str) -> None:
    text = read(DOCS / "configuration.md")
    assert f"### `c.BookstoreSettings.{name}`\n" in text
    for variable in BookstoreSettings.variables(name):
        assert f"`{variable}`" in text, variable


@pytest.mark.parametrize("variable", sorted(_LEGACY_VARIABLES.values()))
def test_every_legacy_variable_is_documented(variable: str) -> None:
    assert f"`{variable}`" in read(DOCS / "configuration.md")


def test_the_docs_name_no_setting_or_variable_that_does_not_exist() -> None:
    variables = {v for name in SETTINGS for v in BookstoreSettings.variables(name)}
    for page in PAGES:
        text = read(page)
        for name in re.findall(r"c\.BookstoreSettings\.(\w+)", text):
            assert name in SETTINGS, f"{page.name} names c.BookstoreSettings.{name}"
        for variable in re.findall(r"\b(?:BOOKSTORE|JPYNB)_[A-Z0-9_]*[A-Z0-9]\b", text):
            assert variable in variables, f"{page.name} names {variable}"


def test_the_settings_table_gives_every_default(clean_environment: None) -> None:
    settings = BookstoreSettings()
    data_dir = str(Path(jupyter_data_dir()))
    documented = {}
    for line in read(DOCS / "configuration.md").splitlines():
        row = re.match(r"\| \[`c\.BookstoreSettings\.(\w+)`\]", line)
        if row:
            documented[row[1]] = line.rstrip(" |").rsplit(" | ", 1)[1].strip("`")
    assert sorted(documented) == SETTINGS
    for name, default in documented.items():
        expected = getattr(settings, name)
        if "<data dir>" in default:
            assert default.replace("<data dir>", data_dir) == expected, name
        else:
            assert ast.literal_eval(default) == expected, name


# -- links ---------------------------------------------------------------------------------


def _relative_links() -> list[tuple[Path, str]]:
    links = []
    for page in PAGES:
        for target in _LINK.findall(prose(read(page))):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):
                links.append((page, target))
    return links


@pytest.mark.parametrize(
    ("page", "target"),
    _relative_links(),
    ids=[f"{page.name}:{target}" for page, target in _relative_links()],
)
def test_every_relative_link_points_to_an_existing_file_and_heading(
    page: Path, target: str
) -> None:
    path, _, fragment = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    assert destination.exists(), f"{page.name} links to {target}, which does not exist"
    if fragment and destination.suffix == ".md":
        assert fragment in anchors(destination), f"{page.name}: no heading for {target}"


# -- SQL -----------------------------------------------------------------------------------

T0 = datetime(2026, 11, 24, 22, 30, tzinfo=timezone.utc)


async def fill_index(tmp_path: Path) -> Path:
    database = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path}/i.sqlite")
    saves = [
        ("reports/Q1 summary.ipynb", 0, 120),
        ("reports/Q1 summary.ipynb", 45, 80),
        ("Untitled.ipynb", 60, 15),
        ("reports/Q1 summary.ipynb", 90, 310),
    ]
    try:
        await database.migrate()
        for n, (path, minutes, latency_ms) in enumerate(saves):
            queued = T0 + timedelta(minutes=minutes)
            key = f"workspace/{path}/@{n}"
            async with database.writing() as session:
                await queries.reserve_version(session, "workspace", path, key, f"{n:064x}", queued)
                await queries.add_version(
                    session,
                    workspace="workspace",
                    store_key=key,
                    size=1000 + n,
                    sha256=f"{n:064x}",
                    queued_at=queued,
                    archived_at=queued + timedelta(milliseconds=latency_ms),
                )
    finally:
        await database.close()
    return tmp_path / "i.sqlite"


@pytest.fixture
def index_file(tmp_path: Path, run: Run[Any]) -> Path:
    """A freshly migrated SQLite index holding versions of two notebooks over two days."""
    return run(fill_index(tmp_path))


@pytest.mark.parametrize("name", SQL_PAGES)
async def test_every_sql_example_runs_on_a_real_index(name: str, index_file: Path) -> None:
    blocks = fenced(read(DOCS / name), "sql")
    assert blocks, f"{name} has no sql blocks"
    with closing(sqlite3.connect(index_file)) as connection:
        for block in blocks:
            try:
                rows = connection.execute(block).fetchall()
            except sqlite3.Error as exc:
                pytest.fail(f"{name}: {exc}\n{block}")
            if name == "index-schema.md":
                assert rows, f"{name}: no rows from\n{block}"


async def test_every_column_and_constraint_is_documented(index_file: Path) -> None:
    text = read(DOCS / "index-schema.md")
    with closing(sqlite3.connect(index_file)) as connection:
        for relation in ("versions", "archive_latency"):
            for column in connection.execute(f"PRAGMA table_info({relation})"):
                assert f"| `{column[1]}` |" in text, f"{relation}.{column[1]}"
        query = "SELECT sql FROM sqlite_master WHERE tbl_name = 'versions' AND sql IS NOT NULL"
        schema = " ".join(sql for (sql,) in connection.execute(query))
    names = re.findall(r"CONSTRAINT (\w+)", schema) + re.findall(r"CREATE INDEX (\w+)", schema)
    assert names
    for name in names:
        assert f"`{name}`" in text, name


# -- install.md: the status endpoint -------------------------------------------------------


def test_the_status_json_is_the_one_install_md_explains(clean_environment: None) -> None:
    from bookstore.server.services import BookstoreServices

    unused = mock.NonCallableMagicMock()
    services = BookstoreServices(BookstoreSettings(), unused, unused, unused)
    status = services.status(unused, storage=None)
    text = read(DOCS / "install.md")
    [example] = [json.loads(b) for b in fenced(text, "json") if '"release"' in b]
    assert example.keys() == status.keys()
    for part in ("features", "archive"):
        assert example[part].keys() == status[part].keys(), part
    for key in [*status, *status["features"], *status["archive"]]:
        assert f'| `"{key}"` |' in text, f"install.md does not explain {key!r}"


# -- the tests the docs cite ---------------------------------------------------------------


def test_every_test_the_docs_cite_exists() -> None:
    sources = "\n".join(read(path) for path in sorted((ROOT / "tests").glob("test_*.py")))
    defined = set(re.findall(r"^(?:async )?def (test_\w+)", sources, re.M))
    cited = {name for page in PAGES for name in re.findall(r"`(test_\w+)`", read(page))}
    assert cited, "the docs cite no test"
    assert sorted(cited - defined) == []
