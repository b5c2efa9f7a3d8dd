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


# -- names longer than a file name, keys longer than S3 allows ----------------------------

long_component = st.text(
    alphabet=st.sampled_from(["%", "@", "é", "😀", "a", "+", " ", "."]), min_size=1, max_size=300
).filter(lambda part: part not in (".", ".."))
long_paths = st.lists(long_component, min_size=1, max_size=3).map("/".join)


@given(long_paths, times)
def test_a_long_name_gets_a_key_every_store_holds_and_that_names_it_exactly(
    path: str, when: datetime
) -> None:
    refused = key = None
    try:
        key = keys.version_key("workspace", path, when)
    except InvalidPath as exc:
        refused = str(exc)
    if key is None:
        assert refused is not None
        assert "1,024 bytes" in refused
        assert len(f"workspace/{path}/@20260101T000000.000000Z".encode()) > 900
        return
    assert len(key.encode()) <= keys.MAX_KEY_BYTES
    assert all(len(part.encode()) <= 255 for part in key.split("/"))
    assert len(key.rsplit("/", 1)[1].encode()) <= 250  # room for the local store's .json
    assert key.startswith(keys.path_prefix("workspace", path))
    assert keys.parse_version_key("workspace", key) == keys.VersionKey(path, when)


@given(long_paths, long_paths, times)
def test_long_names_never_list_another_paths_versions(
    path: str, other: str, when: datetime
) -> None:
    assume(path != other)
    try:
        key = keys.version_key("workspace", other, when)
    except InvalidPath:
        return
    assert not key.startswith(keys.path_prefix("workspace", path))


def test_a_name_longer_than_a_file_name_is_cut_in_marked_pieces() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    path = f"{'%' * 100}.ipynb"  # 106 characters, 306 bytes once encoded
    key = keys.version_key("workspace", path, when)
    first, second = key.split("/")[1:3]
    assert first == "%25" * 84 + "%+"
    assert second == "%25" * 16 + ".ipynb"
    assert keys.parse_version_key("workspace", key) == keys.VersionKey(path, when)


def test_a_path_with_the_piece_mark_in_it_is_its_own_path() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for path in ("a%+/b.ipynb", "%+", "a/%+/b"):
        key = keys.version_key("workspace", path, when)
        assert "%+" not in key
        assert keys.parse_version_key("workspace", key) == keys.VersionKey(path, when)


def test_a_key_over_1024_bytes_is_refused_in_words() -> None:
    path = "/".join(["f" * 250] * 4) + "/a.ipynb"
    with pytest.raises(InvalidPath, match=r"would be 1,\d{3} bytes.*at most 1,024 bytes"):
        keys.version_key("workspace", path, datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert keys.path_prefix("workspace", path)  # its history can still be asked for


def test_a_very_long_extension_is_left_out_of_the_key() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    path = "a." + "x" * 201
    key = keys.version_key("workspace", path, when)
    assert key.endswith("/@20260101T000000.000000Z")
    assert keys.parse_version_key("workspace", key) == keys.VersionKey(path, when)


def test_keys_written_before_long_names_were_cut_still_parse() -> None:
    """S3 held them: a segment over 255 bytes, and a long extension repeated."""
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    path = "@" * 90 + "." + "x" * 201
    old_key = f"workspace/{'%40' * 90}.{'x' * 201}/@20260101T000000.000000Z.{'x' * 201}"
    assert keys.parse_version_key("workspace", old_key) == keys.VersionKey(path, when)


@pytest.mark.parametrize(
    "key",
    [
        "workspace/a%+/@20260101T000000.000000Z",  # a piece mark with no piece after it
        "workspace/a%41/@20260101T000000.000000Z",  # no escape bookstore writes
        "workspace/a@b/@20260101T000000.000000Z",
    ],
)
def test_keys_bookstore_never_writes_are_not_versions(key: str) -> None:
    assert keys.parse_version_key("workspace", key) is None


def test_a_path_that_is_not_valid_unicode_is_refused() -> None:
    with pytest.raises(InvalidPath, match="not valid Unicode"):
        keys.normalize_path("name\udcff.ipynb")
