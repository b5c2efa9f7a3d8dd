"""Retention rules on constructed histories whose survivors are known in advance."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookstore.core.errors import Refused
from bookstore.core.retention import (
    UNLIMITED,
    Decision,
    Duration,
    EmptyPolicy,
    RetentionPolicy,
    VersionInfo,
    decide,
    parse_duration,
)

UTC = timezone.utc
PLUS_2 = timezone(timedelta(hours=2))


def at(text: str, tz: timezone = UTC) -> datetime:
    """An aware datetime from ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def history(*moments: datetime) -> list[VersionInfo]:
    """Versions 1, 2, ... saved at ``moments``, unlabelled and unpinned."""
    return [VersionInfo(number, moment) for number, moment in enumerate(moments, start=1)]


def hourly_saves(first: datetime, hours: int) -> list[VersionInfo]:
    """One save every hour on the hour, ``hours`` of them."""
    return history(*(first + timedelta(hours=n) for n in range(hours)))


def kept(decisions: Iterable[Decision]) -> set[datetime]:
    """The save times of the kept versions, in UTC, which reads better in asserts."""
    return {d.version.queued_at.astimezone(UTC) for d in decisions if d.keep}


def _count_option(rule: str, count: int) -> dict[str, Any]:
    """``keep_<rule>=count`` as keyword arguments for ``RetentionPolicy.from_options``."""
    return {f"keep_{rule}": count}


def kept_numbers(decisions: Iterable[Decision]) -> set[int]:
    return {d.version.number for d in decisions if d.keep}


def reasons_of(decisions: Iterable[Decision], number: int) -> tuple[str, ...]:
    return next(d.reasons for d in decisions if d.version.number == number)


THIRTY_DAYS = hourly_saves(at("2026-11-01 00:00"), 30 * 24)  # Nov 1 00:00 .. Nov 30 23:00


# -- each rule alone -------------------------------------------------------------


def test_keep_last_keeps_the_newest_and_answers_in_version_order() -> None:
    versions = history(*(at(f"2026-11-{day:02d} 12:00") for day in range(1, 11)))
    shuffled = random.Random(7).sample(versions, len(versions))
    decisions = decide(shuffled, RetentionPolicy(keep_last=3), UTC)
    assert [d.version.number for d in decisions] == list(range(1, 11))
    assert kept_numbers(decisions) == {8, 9, 10}
    assert reasons_of(decisions, 10) == ("last 3",)
    assert reasons_of(decisions, 7) == ()


def test_keep_last_larger_than_the_history_keeps_everything() -> None:
    decisions = decide(THIRTY_DAYS[:5], RetentionPolicy(keep_last=50), UTC)
    assert all(d.keep for d in decisions)


def test_keep_last_ranks_by_save_time_then_version_number() -> None:
    moment = at("2026-11-24 12:00")
    versions = [
        VersionInfo(3, moment),
        VersionInfo(1, moment),
        VersionInfo(2, at("2026-11-25 09:00")),
    ]
    assert kept_numbers(decide(versions, RetentionPolicy(keep_last=2), UTC)) == {2, 3}


def test_keep_daily_keeps_the_last_save_of_each_of_the_last_days() -> None:
    decisions = decide(THIRTY_DAYS, RetentionPolicy(keep_daily=7), UTC)
    assert kept(decisions) == {at(f"2026-11-{day} 23:00") for day in range(24, 31)}
    last_of_24th = next(d for d in decisions if d.version.queued_at == at("2026-11-24 23:00"))
    assert last_of_24th.reasons == ("daily 2026-11-24",)


def test_keep_daily_counts_only_days_that_have_saves() -> None:
    versions = history(
        at("2026-11-01 09:00"),
        at("2026-11-01 17:00"),
        at("2026-11-05 08:00"),  # 2nd-4th: nothing saved
        at("2026-11-05 20:00"),
        at("2026-11-09 07:00"),
        at("2026-11-10 10:00"),
        at("2026-11-10 11:00"),
    )
    decisions = decide(versions, RetentionPolicy(keep_daily=3), UTC)
    assert kept_numbers(decisions) == {4, 5, 7}


def test_keep_hourly_keeps_the_last_save_of_each_hour_skipping_empty_hours() -> None:
    versions = history(
        at("2026-11-25 12:10"),
        at("2026-11-25 13:05"),
        at("2026-11-25 13:55"),
        at("2026-11-25 14:00"),
        at("2026-11-25 14:59"),  # 15:00 to 16:59: nothing
        at("2026-11-25 17:30"),
    )
    decisions = decide(versions, RetentionPolicy(keep_hourly=3), UTC)
    assert kept_numbers(decisions) == {3, 5, 6}
    assert reasons_of(decisions, 5) == ("hourly 2026-11-25 14:00",)


def test_keep_weekly_uses_iso_weeks_across_the_year_boundary() -> None:
    # 2026 has 53 ISO weeks: 2026-W53 runs from Mon Dec 28, 2026 to Sun Jan 3, 2027.
    first = at("2026-12-21 12:00")
    versions = history(*(first + timedelta(days=n) for n in range(21)))  # .. Sun Jan 10
    decisions = decide(versions, RetentionPolicy(keep_weekly=3), UTC)
    assert kept(decisions) == {
        at("2027-01-10 12:00"),
        at("2027-01-03 12:00"),
        at("2026-12-27 12:00"),
    }
    by_time = {d.version.queued_at: d.reasons for d in decisions if d.keep}
    assert by_time[at("2027-01-10 12:00")] == ("weekly 2027-W01",)
    assert by_time[at("2027-01-03 12:00")] == ("weekly 2026-W53",)
    assert by_time[at("2026-12-27 12:00")] == ("weekly 2026-W52",)


def test_keep_monthly_keeps_month_ends_and_skips_months_without_saves() -> None:
    days = [date(2026, 1, 15) + timedelta(days=n) for n in range(86)]  # Jan 15 .. Apr 10
    saves = [datetime(d.year, d.month, d.day, 12, tzinfo=UTC) for d in days if d.month != 2]
    decisions = decide(history(*saves), RetentionPolicy(keep_monthly=3), UTC)
    assert kept(decisions) == {
        at("2026-04-10 12:00"),
        at("2026-03-31 12:00"),
        at("2026-01-31 12:00"),
    }
    assert sorted(r for d in decisions for r in d.reasons) == [
        "monthly 2026-01",
        "monthly 2026-03",
        "monthly 2026-04",
    ]


def test_keep_yearly_keeps_the_last_save_of_each_year() -> None:
    versions = history(at("2024-12-31 23:00"), at("2025-06-01 12:00"), at("2025-12-31 22:00"))
    decisions = decide(versions, RetentionPolicy(keep_yearly=5), UTC)
    assert kept_numbers(decisions) == {1, 3}
    assert reasons_of(decisions, 1) == ("yearly 2024",)


def test_keep_within_is_relative_to_the_latest_save_not_to_now() -> None:
    # Years ago: relative to now nothing would be within 2 days.
    versions = hourly_saves(at("2020-06-01 00:00"), 10 * 24)  # .. Jun 10 23:00
    decisions = decide(versions, RetentionPolicy(keep_within=Duration(days=2)), UTC)
    # Strictly after latest - 2d (as restic): Jun 8 23:00 itself is out.
    assert kept(decisions) == {at("2020-06-08 23:00") + timedelta(hours=n) for n in range(1, 49)}
    assert {r for d in decisions for r in d.reasons} == {"within 2d of latest"}


def test_keep_within_counts_calendar_months_clamped_to_the_month_end() -> None:
    versions = history(
        at("2026-02-27 23:00"),
        at("2026-02-28 12:00"),  # exactly 1m before Mar 31 12:00: out
        at("2026-02-28 12:01"),
        at("2026-03-31 12:00"),
    )
    decisions = decide(versions, RetentionPolicy.from_options(keep_within="1m"), UTC)
    assert kept_numbers(decisions) == {3, 4}


def test_keep_within_further_back_than_any_date_keeps_everything() -> None:
    decisions = decide(THIRTY_DAYS[:3], RetentionPolicy(keep_within=Duration(years=9999)), UTC)
    assert all(d.keep for d in decisions)


def test_unlimited_counts_keep_every_period() -> None:
    daily = decide(THIRTY_DAYS, RetentionPolicy(keep_daily=UNLIMITED), UTC)
    assert kept(daily) == {at(f"2026-11-{day:02d} 23:00") for day in range(1, 31)}
    everything = decide(THIRTY_DAYS, RetentionPolicy(keep_last=-1), UTC)
    assert all(d.keep and d.reasons == ("last (unlimited)",) for d in everything)


# -- combined rules ----------------------------------------------------------------


def test_rules_are_ored_and_every_matching_rule_is_a_reason() -> None:
    # Nov 30, 2026 is a Monday (W49); Nov 23-29 is W48.
    policy = RetentionPolicy(keep_last=2, keep_daily=3, keep_weekly=2, keep_monthly=1)
    decisions = decide(THIRTY_DAYS, policy, UTC)
    by_time = {d.version.queued_at: d.reasons for d in decisions if d.keep}
    assert by_time == {
        at("2026-11-30 23:00"): (
            "last 2",
            "daily 2026-11-30",
            "weekly 2026-W49",
            "monthly 2026-11",
        ),
        at("2026-11-30 22:00"): ("last 2",),
        at("2026-11-29 23:00"): ("daily 2026-11-29", "weekly 2026-W48"),
        at("2026-11-28 23:00"): ("daily 2026-11-28",),
    }


# -- labels and pins ---------------------------------------------------------------


def test_labelled_and_pinned_versions_always_survive_with_their_reason() -> None:
    versions = list(THIRTY_DAYS)
    versions[0] = versions[0]._replace(label="v1 final")
    versions[1] = versions[1]._replace(pinned=True)
    versions[2] = versions[2]._replace(label="both", pinned=True)
    versions[-1] = versions[-1]._replace(label="latest")
    decisions = decide(versions, RetentionPolicy(keep_last=1), UTC)
    assert kept_numbers(decisions) == {1, 2, 3, len(versions)}
    assert reasons_of(decisions, 1) == ("labelled 'v1 final'",)
    assert reasons_of(decisions, 2) == ("pinned",)
    assert reasons_of(decisions, 3) == ("labelled 'both'", "pinned")
    assert reasons_of(decisions, len(versions)) == ("labelled 'latest'", "last 1")


def test_a_label_takes_no_slot_from_the_rules() -> None:
    # Labelling the newest save does not make keep-last reach back one save further.
    versions = list(THIRTY_DAYS)
    versions[-1] = versions[-1]._replace(label="submitted")
    decisions = decide(versions, RetentionPolicy(keep_last=3), UTC)
    assert kept_numbers(decisions) == {len(versions) - 2, len(versions) - 1, len(versions)}


def test_an_empty_label_is_no_label() -> None:
    versions = [VersionInfo(1, at("2026-11-01 00:00"), label=""), *THIRTY_DAYS[1:]]
    assert 1 not in kept_numbers(decide(versions, RetentionPolicy(keep_last=1), UTC))


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        RetentionPolicy(),
        RetentionPolicy(keep_last=0, keep_daily=0, keep_within=Duration()),
        RetentionPolicy.from_options(keep_within="0d"),
    ],
)
def test_an_empty_policy_is_refused_even_without_versions(policy: RetentionPolicy) -> None:
    assert policy.is_empty
    message = "refusing to prune with an empty policy: give at least one --keep-* option"
    for versions in (THIRTY_DAYS, []):
        with pytest.raises(ValueError, match=re.escape(message)) as caught:
            decide(versions, policy, UTC)
        assert isinstance(caught.value, EmptyPolicy)
        assert isinstance(caught.value, Refused)


@pytest.mark.parametrize("option", ["last", "hourly", "daily", "weekly", "monthly", "yearly"])
def test_negative_counts_other_than_unlimited_are_refused(option: str) -> None:
    message = f"--keep-{option} must be a positive number or -1 for unlimited"
    with pytest.raises(ValueError, match=message):
        RetentionPolicy.from_options(**_count_option(option, -2))
    assert not RetentionPolicy.from_options(**_count_option(option, -1)).is_empty


def test_counts_must_be_whole_numbers() -> None:
    with pytest.raises(TypeError, match="--keep-last"):
        RetentionPolicy(keep_last=True)
    with pytest.raises(TypeError, match="--keep-daily"):
        RetentionPolicy(keep_daily=1.5)  # type: ignore[arg-type]


def test_an_invalid_keep_within_names_the_option() -> None:
    with pytest.raises(ValueError, match=r"^--keep-within: invalid duration '7x'"):
        RetentionPolicy.from_options(keep_within="7x")


def test_naive_times_and_repeated_versions_are_refused() -> None:
    policy = RetentionPolicy(keep_last=1)
    with pytest.raises(ValueError, match="version 1: queued_at must be timezone-aware"):
        decide([VersionInfo(1, datetime(2026, 11, 1))], policy)
    with pytest.raises(ValueError, match="version 2 is listed twice"):
        decide([*THIRTY_DAYS[:2], THIRTY_DAYS[1]], policy)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        decide(THIRTY_DAYS, policy, now=datetime(2026, 11, 1))


def test_no_versions_no_decisions() -> None:
    assert decide([], RetentionPolicy(keep_last=1), UTC) == []


# -- durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1y5m7d2h", Duration(years=1, months=5, days=7, hours=2)),
        ("2h1y", Duration(years=1, hours=2)),
        ("7d", Duration(days=7)),
        ("2w", Duration(days=14)),
        ("2w3d", Duration(days=17)),
        (" 36h ", Duration(hours=36)),
        ("0d", Duration()),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("7", "7 has no unit"),
        ("d", "expected a whole number at 'd'"),
        ("-1d", "expected a whole number at '-1d'"),
        ("1.5d", r"unexpected '\.' after 1"),
        ("7 d", "unexpected ' ' after 7"),
        ("7x", "unknown unit 'x'"),
        ("7D", "unknown unit 'D'"),
        ("1d2d", "days given twice"),
        ("1w", None),
    ],
)
def test_invalid_durations_are_refused_with_a_sentence(text: str, problem: str | None) -> None:
    if problem is None:  # a control: weeks are accepted
        assert parse_duration(text) == Duration(days=7)
        return
    with pytest.raises(ValueError, match=problem):
        parse_duration(text)


def test_durations_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match=r"Duration\.days must not be negative"):
        Duration(days=-1)


@pytest.mark.parametrize(
    ("moment", "duration", "expected"),
    [
        (at("2026-03-31 12:00"), "1m", at("2026-02-28 12:00")),
        (at("2024-03-31 12:00"), "1m", at("2024-02-29 12:00")),
        (at("2024-02-29 12:00"), "1y", at("2023-02-28 12:00")),
        (at("2026-05-31 12:00"), "3m", at("2026-02-28 12:00")),
        (at("2026-01-15 12:00"), "1m", at("2025-12-15 12:00")),
        (at("2026-11-25 12:00"), "1y5m7d2h", at("2025-06-18 10:00")),
        (at("2026-03-01 01:00"), "1d2h", at("2026-02-27 23:00")),
    ],
)
def test_subtract_from_is_calendar_arithmetic(
    moment: datetime, duration: str, expected: datetime
) -> None:
    assert parse_duration(duration).subtract_from(moment) == expected


def test_days_are_calendar_days_and_hours_are_elapsed_time_across_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # clocks went 02:00 -> 03:00 on Mar 29, 2026
    moment = datetime(2026, 3, 29, 12, 0, tzinfo=berlin)
    assert Duration(days=1).subtract_from(moment) == datetime(2026, 3, 28, 12, 0, tzinfo=berlin)
    assert Duration(hours=24).subtract_from(moment) == datetime(2026, 3, 28, 11, 0, tzinfo=berlin)


def test_subtracting_past_year_one_overflows() -> None:
    with pytest.raises(OverflowError):
        Duration(years=3000).subtract_from(at("2026-01-01 00:00"))


# -- time zones ------------------------------------------------------------------------


def test_periods_are_computed_in_the_given_time_zone() -> None:
    versions = history(
        at("2026-11-24 22:00"),  # Nov 25, 00:00 in UTC+2
        at("2026-11-24 23:30"),  # Nov 25, 01:30 in UTC+2
        at("2026-11-25 10:00"),
    )
    policy = RetentionPolicy(keep_daily=2)
    in_utc = decide(versions, policy, UTC)
    assert kept_numbers(in_utc) == {2, 3}
    assert reasons_of(in_utc, 2) == ("daily 2026-11-24",)
    in_plus_2 = decide(versions, policy, PLUS_2)
    assert kept_numbers(in_plus_2) == {3}
    assert reasons_of(in_plus_2, 3) == ("daily 2026-11-25",)


@pytest.fixture
def local_zone_kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is Asia/Kolkata (UTC+5:30, no DST) for one test."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone_kolkata")
def test_the_default_time_zone_is_the_local_one() -> None:
    versions = history(at("2026-11-24 18:00"), at("2026-11-24 19:00"))  # 23:30, 00:30 IST
    decisions = decide(versions, RetentionPolicy(keep_daily=5))
    assert kept_numbers(decisions) == {1, 2}
    assert reasons_of(decisions, 2) == ("daily 2026-11-25",)


def test_a_save_from_the_future_cannot_push_everything_out_of_keep_within() -> None:
    real = history(*(at(f"2026-11-{day} 12:00") for day in range(20, 26)))
    versions = [*real, VersionInfo(7, at("2099-01-01 00:00"))]
    policy = RetentionPolicy.from_options(keep_within="2d")
    # Without ``now`` the bogus save is the latest, as the pure rule says ...
    assert kept_numbers(decide(versions, policy, UTC)) == {7}
    # ... with it, the latest real save is, and the future one is kept too (as restic).
    decisions = decide(versions, policy, UTC, now=at("2026-11-26 09:00"))
    assert kept_numbers(decisions) == {5, 6, 7}


# -- properties --------------------------------------------------------------------------

BASE = at("2026-01-01 00:00")
counts = st.one_of(st.none(), st.integers(min_value=0, max_value=12), st.just(UNLIMITED))
durations = st.builds(
    Duration,
    months=st.integers(0, 2),
    days=st.integers(0, 20),
    hours=st.integers(0, 30),
)
zones = st.sampled_from([UTC, PLUS_2, timezone(timedelta(hours=-9, minutes=-30))])


@st.composite
def histories(draw: st.DrawFn) -> list[VersionInfo]:
    """Up to 60 versions within about 4 months; same-minute saves and labels happen."""
    minutes = draw(st.lists(st.integers(0, 60 * 24 * 120), max_size=60))
    versions = []
    for number, minute in enumerate(minutes, start=1):
        label = draw(st.sampled_from([None, None, None, None, "", "final"]))
        pinned = draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())
        versions.append(VersionInfo(number, BASE + timedelta(minutes=minute), label, pinned))
    return draw(st.permutations(versions))


@st.composite
def policies(draw: st.DrawFn) -> RetentionPolicy:
    policy = RetentionPolicy(
        keep_last=draw(counts),
        keep_hourly=draw(counts),
        keep_daily=draw(counts),
        keep_weekly=draw(counts),
        keep_monthly=draw(counts),
        keep_yearly=draw(counts),
        keep_within=draw(st.none() | durations),
    )
    if policy.is_empty:
        return RetentionPolicy(keep_last=draw(st.integers(1, 5)))
    return policy


def _more(count: int | None, extra: int) -> int | None:
    if count == UNLIMITED:
        return count
    return (count or 0) + extra if extra >= 0 else UNLIMITED


def _longer(within: Duration | None, more: Duration) -> Duration:
    base = within or Duration()
    return Duration(
        months=base.months + more.months,
        days=base.days + more.days,
        hours=base.hours + more.hours,
    )


@settings(deadline=None)
@given(
    versions=histories(),
    policy=policies(),
    extras=st.lists(st.integers(-1, 5), min_size=6, max_size=6),
    more=durations,
    tz=zones,
)
def test_a_more_generous_policy_keeps_everything_a_stricter_one_keeps(
    versions: list[VersionInfo],
    policy: RetentionPolicy,
    extras: list[int],
    more: Duration,
    tz: timezone,
) -> None:
    larger = RetentionPolicy(
        keep_last=_more(policy.keep_last, extras[0]),
        keep_hourly=_more(policy.keep_hourly, extras[1]),
        keep_daily=_more(policy.keep_daily, extras[2]),
        keep_weekly=_more(policy.keep_weekly, extras[3]),
        keep_monthly=_more(policy.keep_monthly, extras[4]),
        keep_yearly=_more(policy.keep_yearly, extras[5]),
        keep_within=_longer(policy.keep_within, more),
    )
    assert kept_numbers(decide(versions, policy, tz)) <= kept_numbers(decide(versions, larger, tz))


@settings(deadline=None)
@given(versions=histories(), n=st.integers(1, 80))
def test_keep_last_n_keeps_the_n_newest_plus_protected_ones(
    versions: list[VersionInfo], n: int
) -> None:
    unprotected = [v._replace(label=None, pinned=False) for v in versions]
    plain = kept_numbers(decide(unprotected, RetentionPolicy(keep_last=n), UTC))
    assert len(plain) == min(n, len(versions))
    newest = sorted(versions, key=lambda v: (v.queued_at, v.number))[-n:]
    protected = {v.number for v in versions if v.protected}
    decisions = decide(versions, RetentionPolicy(keep_last=n), UTC)
    assert kept_numbers(decisions) == {v.number for v in newest} | protected


@settings(deadline=None)
@given(versions=histories(), policy=policies(), tz=zones)
def test_labels_and_pins_only_add_survivors(
    versions: list[VersionInfo], policy: RetentionPolicy, tz: timezone
) -> None:
    decisions = decide(versions, policy, tz)
    assert [d.version.number for d in decisions] == sorted(v.number for v in versions)
    assert all(d.keep == bool(d.reasons) for d in decisions)
    unprotected = [v._replace(label=None, pinned=False) for v in versions]
    protected = {v.number for v in versions if v.protected}
    expected = kept_numbers(decide(unprotected, policy, tz)) | protected
    assert kept_numbers(decisions) == expected


PERIOD_OF: dict[str, Callable[[datetime], object]] = {
    "hourly": lambda moment: (moment.date(), moment.hour),
    "daily": lambda moment: moment.date(),
    "weekly": lambda moment: moment.isocalendar()[:2],
    "monthly": lambda moment: (moment.year, moment.month),
}


@settings(deadline=None)
@given(
    versions=histories(),
    rule=st.sampled_from(sorted(PERIOD_OF)),
    n=st.integers(1, 15),
    tz=zones,
)
def test_period_rules_match_a_group_by_oracle(
    versions: list[VersionInfo], rule: str, n: int, tz: timezone
) -> None:
    unprotected = [v._replace(label=None, pinned=False) for v in versions]
    newest_in: dict[object, VersionInfo] = {}
    for v in sorted(unprotected, key=lambda v: (v.queued_at, v.number)):
        newest_in[PERIOD_OF[rule](v.queued_at.astimezone(tz))] = v
    latest_periods = sorted(newest_in.values(), key=lambda v: (v.queued_at, v.number))[-n:]
    policy = RetentionPolicy.from_options(**_count_option(rule, n))
    assert kept_numbers(decide(unprotected, policy, tz)) == {v.number for v in latest_periods}


def test_describe_says_what_a_dry_run_applies() -> None:
    policy = RetentionPolicy.from_options(keep_last=3, keep_weekly=-1, keep_within="1y2w")
    assert policy.describe() == (
        "keep 3 newest, all weekly, all within 1y14d of the latest,"
        " and every labelled or pinned version"
    )
    assert RetentionPolicy().describe() == "empty policy: nothing would be kept"
