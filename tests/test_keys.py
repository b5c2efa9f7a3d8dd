"""Keys: round trips, save-order sorting and prefix isolation, for any path."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bookstore.core import keys
from bookstore.core.errors import InvalidPath

component = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/\0"),
    min_size=1,
    max_size=20,
).filter(lambda part: part not in (".", ".."))
paths = st.lists(component, min_size=1, max_size=4).map("/".join)
prefixes = st.sampled_from(["workspace", "users/alice/work", "", "with space@x"])
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
)


@given(prefixes, paths, times)
def test_version_key_round_trips(prefix: str, path: str, when: datetime) -> None:
    key = keys.version_key(prefix, path, when)
    assert key.startswith(f"{prefix}/" if prefix else "")
    assert key.startswith(keys.path_prefix(prefix, path))
    assert keys.parse_version_key(prefix, key) == keys.VersionKey(path, when)


@given(
    prefixes,
    paths,
    times,
    st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=36500)),
)
def test_keys_of_one_path_sort_in_save_order(
    prefix: str, path: str, first: datetime, gap: timedelta
) -> None:
    assert keys.version_key(prefix, path, first) < keys.version_key(prefix, path, first + gap)


@given(prefixes, paths, paths, times)
def test_a_path_prefix_never_lists_another_paths_versions(
    prefix: str, path: str, other: str, when: datetime
) -> None:
    assume(path != other)
    assert not keys.version_key(prefix, other, when).startswith(keys.path_prefix(prefix, path))


@pytest.mark.parametrize(
    ("path", "sibling"),
    [
        ("a.ipynb", "a.ipynb2"),
        ("a.ipynb", "a.ipynb/b.ipynb"),
        ("a", "a@b"),
        ("dir/a.ipynb", "dir/a.ipynb/@20260101T000000.000000Z.ipynb"),
        ("100%.ipynb", "100%25.ipynb"),
    ],
)
def test_sibling_paths_are_isolated(path: str, sibling: str) -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    prefix = keys.path_prefix("workspace", path)
    assert not keys.version_key("workspace", sibling, when).startswith(prefix)
    assert keys.parse_version_key("workspace", keys.version_key("workspace", sibling, when)) == (
        keys.VersionKey(sibling, when)
    )


def test_key_is_readable_and_fixed_width() -> None:
    when = datetime(2026, 11, 25, 17, 58, 6, 123456, tzinfo=timezone.utc)
    key = keys.version_key("workspace", "/reports/Q1 summary ü.ipynb", when)
    assert key == "workspace/reports/Q1 summary ü.ipynb/@20261125T175806.123456Z.ipynb"


def test_times_in_other_zones_are_stored_as_utc() -> None:
    local = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    key = keys.version_key("workspace", "a.ipynb", local)
    assert "@20260101T100000.000000Z" in key


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        keys.version_key("workspace", "a.ipynb", datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "path", ["", "/", "../a.ipynb", "a/../../b", "a/./b", "a//b", "a\0b", "..", "a/.."]
)
def test_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(InvalidPath):
        keys.path_prefix("workspace", path)


@pytest.mark.parametrize(
    "key",
    [
        "workspace/a.ipynb",
        "workspace/a.ipynb/@2026.ipynb",
        "other/a.ipynb/@20260101T000000.000000Z.ipynb",
        "workspace/a.ipynb/@20260101T000000.000000Z.txt",
        "workspace/../a.ipynb/@20260101T000000.000000Z.ipynb",
    ],
)
def test_keys_that_are_not_versions_parse_to_none(key: str) -> None:
    assert keys.parse_version_key("workspace", key) is None


def test_a_backslash_is_an_ordinary_character_of_a_file_name() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    key = keys.version_key("workspace", "dir/a\\b.ipynb", when)
    assert key == "workspace/dir/a\\b.ipynb/@20260101T000000.000000Z.ipynb"
    assert keys.parse_version_key("workspace", key) == keys.VersionKey("dir/a\\b.ipynb", when)
