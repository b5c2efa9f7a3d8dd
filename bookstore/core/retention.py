"""Which archived versions a retention policy keeps. Pure functions, no I/O.

The rules are restic's ``forget`` rules, so people who know restic need to learn
nothing new, and ``bookstore-history prune`` only has to delete what ``decide``
says to drop:

* A version is kept if ANY rule keeps it; the rules never remove anything.
* ``keep_last n``: the n newest versions.
* ``keep_hourly/daily/weekly/monthly/yearly n``: for the n most recent hours
  (days, ISO weeks, months, years) that have at least one version, the newest
  version of each. Periods without versions are not counted. Periods are
  calendar periods in the time zone ``tz`` (the local zone by default), not
  sliding windows and not relative to now.
* ``keep_within d``: every version saved less than ``d`` before the *latest*
  version (not before now), so a notebook nobody touched for a year keeps its
  last burst of work.
* ``-1`` means unlimited for the count rules; ``0`` or ``None`` turns a rule off.
* Labelled and pinned versions are always kept.

Choices where restic leaves room (see ``decide``): labels and pins never
consume a rule's slot nor change what the rules pick; restic >= 0.17's extra
"oldest" snapshot (kept when a rule has unused slots) is NOT kept.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import MINYEAR, datetime, timedelta, timezone, tzinfo
from typing import NamedTuple

from bookstore.core.errors import Refused

__all__ = [
    "UNLIMITED",
    "Decision",
    "Duration",
    "EmptyPolicy",
    "RetentionPolicy",
    "VersionInfo",
    "decide",
    "parse_duration",
]

UNLIMITED = -1
"""The count that keeps every period (restic's ``unlimited``)."""

_EMPTY_POLICY = "refusing to prune with an empty policy: give at least one --keep-* option"


class EmptyPolicy(Refused, ValueError):
    """A policy with no rule would keep nothing (except labels), so it is refused.

    A ``ValueError`` for callers of this module, and a ``Refused`` so the CLI
    reports it with the "refused" exit code like every other data-losing request.
    """

    def __init__(self) -> None:
        super().__init__(_EMPTY_POLICY)


# -- durations -----------------------------------------------------------------


@dataclass(frozen=True)
class Duration:
    """A calendar duration, as restic's ``--keep-within`` takes it (``1y5m7d2h``).

    Not a ``timedelta``: "1 month before March 31" is February 28 (or 29), not
    30 days earlier, so it has to be applied to a date (``subtract_from``).
    """

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Duration.{field.name} must be an int, not {value!r}")
            if value < 0:
                raise ValueError(f"Duration.{field.name} must not be negative, not {value}")

    @property
    def is_zero(self) -> bool:
        """True for a duration of nothing, which turns ``keep_within`` off (as in restic)."""
        return not (self.years or self.months or self.days or self.hours)

    def __str__(self) -> str:
        """The canonical text, which ``parse_duration`` reads back (``1y5m7d2h``)."""
        parts = zip((self.years, self.months, self.days, self.hours), "ymdh", strict=True)
        return "".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0h"

    def subtract_from(self, moment: datetime) -> datetime:
        """The point in time this duration before ``moment``.

        Years, months and days are calendar arithmetic on ``moment``'s wall clock
        in its own time zone (a day is a calendar day even across a DST change);
        the day is clamped to the end of a shorter month (March 31 - 1m is
        February 28/29; Go's ``AddDate``, used by restic, would roll over to
        March 2/3 instead). Hours are then subtracted as elapsed time.
        Raises ``OverflowError`` if the result is before year 1.
        """
        try:
            month_index = moment.year * 12 + moment.month - 1 - self.years * 12 - self.months
            year, month0 = divmod(month_index, 12)
            if year < MINYEAR:
                raise OverflowError("year out of range")
            day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
            result = moment.replace(year=year, month=month0 + 1, day=day)
            result -= timedelta(days=self.days)
            if self.hours and result.tzinfo is not None:
                elapsed = result.astimezone(timezone.utc) - timedelta(hours=self.hours)
                result = elapsed.astimezone(result.tzinfo)
            elif self.hours:
                result -= timedelta(hours=self.hours)
        except (OverflowError, ValueError) as error:
            raise OverflowError(f"{self} before {moment.isoformat()} is out of range") from error
        return result


_UNIT_NAMES = {"y": "years", "m": "months", "w": "weeks", "d": "days", "h": "hours"}
_UNIT_HELP = "use y (years), m (months), w (weeks), d (days) or h (hours), like 1y5m7d2h"
_PART = re.compile(r"([0-9]+)([A-Za-z]?)", re.ASCII)


def parse_duration(text: str) -> Duration:
    """Read a restic-style duration such as ``7d``, ``2w`` or ``1y5m7d2h``.

    Units: ``y`` years, ``m`` MONTHS (not minutes, as in restic), ``w`` weeks
    (7 days; an extension, restic has none), ``d`` days, ``h`` hours. Each unit
    at most once, in any order; whole non-negative numbers only. Anything else
    raises ``ValueError`` with a sentence saying what is wrong, because the text
    comes straight from a command line.
    """
    source = text.strip()
    if not source:
        raise ValueError(f"empty duration: give a number and a unit; {_UNIT_HELP}")
    amounts: dict[str, int] = {}
    position = 0
    while position < len(source):
        match = _PART.match(source, position)
        if match is None:
            raise ValueError(
                f"invalid duration {text!r}: expected a whole number at {source[position:]!r}; "
                + _UNIT_HELP
            )
        number, unit = match.groups()
        if not unit:
            after = source[match.end() : match.end() + 1]
            problem = f"unexpected {after!r} after {number}" if after else f"{number} has no unit"
            raise ValueError(f"invalid duration {text!r}: {problem}; {_UNIT_HELP}")
        if unit not in _UNIT_NAMES:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r}; {_UNIT_HELP}")
        if unit in amounts:
            raise ValueError(f"invalid duration {text!r}: {_UNIT_NAMES[unit]} given twice")
        amounts[unit] = int(number)
        position = match.end()
    return Duration(
        years=amounts.get("y", 0),
        months=amounts.get("m", 0),
        days=amounts.get("d", 0) + 7 * amounts.get("w", 0),
        hours=amounts.get("h", 0),
    )


# -- policy --------------------------------------------------------------------

_COUNT_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep; the fields are restic's ``--keep-*`` options.

    Counts: ``None`` or ``0`` turns a rule off, ``-1`` (``UNLIMITED``) keeps
    every period, anything below ``-1`` is refused. Validated on construction
    so a bad policy never reaches ``decide``.
    """

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: Duration | None = None

    def __post_init__(self) -> None:
        for rule in _COUNT_RULES:
            value = self._count(rule)
            if isinstance(value, bool) or not isinstance(value, int | None):
                raise TypeError(f"--keep-{rule} must be a whole number, not {value!r}")
            if value is not None and value < UNLIMITED:
                raise ValueError(
                    f"--keep-{rule} must be a positive number or -1 for unlimited, not {value}"
                )
        if self.keep_within is not None and not isinstance(self.keep_within, Duration):
            raise TypeError(f"--keep-within must be a Duration, not {self.keep_within!r}")

    @classmethod
    def from_options(
        cls,
        *,
        keep_last: int | None = None,
        keep_hourly: int | None = None,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        keep_monthly: int | None = None,
        keep_yearly: int | None = None,
        keep_within: str | Duration | None = None,
    ) -> RetentionPolicy:
        """Build a policy from command-line values; ``keep_within`` may be text.

        Errors name the option (``--keep-within: ...``) so the CLI can print them as is.
        """
        within = keep_within
        if isinstance(within, str):
            try:
                within = parse_duration(within)
            except ValueError as error:
                raise ValueError(f"--keep-within: {error}") from None
        return cls(
            keep_last=keep_last,
            keep_hourly=keep_hourly,
            keep_daily=keep_daily,
            keep_weekly=keep_weekly,
            keep_monthly=keep_monthly,
            keep_yearly=keep_yearly,
            keep_within=within,
        )

    @property
    def is_empty(self) -> bool:
        """True if no rule is on: such a policy would prune every unlabelled version."""
        counts_off = all(not self._count(rule) for rule in _COUNT_RULES)
        return counts_off and (self.keep_within is None or self.keep_within.is_zero)

    def describe(self) -> str:
        """One line for a dry run's header, e.g. ``keep the last 3, 7 daily, ...``."""
        parts: list[str] = []
        for rule in _COUNT_RULES:
            count = self._count(rule)
            name = "newest" if rule == "last" else rule
            if count == UNLIMITED:
                parts.append(f"all {name}")
            elif count:
                parts.append(f"{count} {name}")
        if self.keep_within is not None and not self.keep_within.is_zero:
            parts.append(f"all within {self.keep_within} of the latest")
        if not parts:
            return "empty policy: nothing would be kept"
        return "keep " + ", ".join(parts) + ", and every labelled or pinned version"

    def _count(self, rule: str) -> int | None:
        value: int | None = getattr(self, f"keep_{rule}")
        return value


# -- decisions -----------------------------------------------------------------


class VersionInfo(NamedTuple):
    """What ``decide`` needs to know about one archived version.

    ``queued_at`` must be timezone-aware. A non-empty ``label`` or ``pinned``
    protects the version from every policy.
    """

    number: int
    queued_at: datetime
    label: str | None = None
    pinned: bool = False

    @property
    def protected(self) -> bool:
        """True for versions that no policy may remove."""
        return bool(self.label) or self.pinned


class Decision(NamedTuple):
    """Keep or drop one version, and every reason it is kept (empty when dropped)."""

    version: VersionInfo
    keep: bool
    reasons: tuple[str, ...]


def _hour(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H}:00"


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year:04d}-W{week:02d}"


_PERIODS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("hourly", _hour),
    ("daily", lambda moment: f"{moment:%Y-%m-%d}"),
    ("weekly", _week),
    ("monthly", lambda moment: f"{moment:%Y-%m}"),
    ("yearly", lambda moment: f"{moment:%Y}"),
)


def decide(
    versions: Sequence[VersionInfo],
    policy: RetentionPolicy,
    tz: tzinfo | None = None,
    *,
    now: datetime | None = None,
) -> list[Decision]:
    """Apply ``policy`` to one notebook's versions; one ``Decision`` per version.

    ``versions`` may come in any order; they are ranked newest first by
    ``queued_at`` (ties: higher version number is newer) and the result is in
    version-number order. Period rules bucket ``queued_at`` in ``tz`` (``None``:
    the machine's local zone, as restic does).

    Labels and pins: a labelled or pinned version is always kept (reasons
    ``labelled '...'``, ``pinned``), and the rules are applied to ALL versions
    exactly as if nobody had labelled anything, as restic does with
    ``--keep-tag``. So labelling only ever adds survivors: ``keep_last 10``
    keeps the 10 newest saves, labelled or not, plus older labelled ones; it
    does not reach back to an 11th save because one of the 10 has a label, and
    a label never changes which other versions survive.

    ``now``: if given, versions saved after it (a clock that was wrong) do not
    count as the latest for ``keep_within``, so one bogus future timestamp cannot
    push every real version out of the window; like restic, they are then kept
    as being within it.

    Raises ``EmptyPolicy`` (a ``ValueError``) for an empty policy, even with no
    versions, so that pruning everything by accident is impossible; and
    ``ValueError`` for naive datetimes or repeated version numbers.
    """
    if policy.is_empty:
        raise EmptyPolicy()
    _check(versions, now)
    newest_first = sorted(versions, key=lambda v: (v.queued_at, v.number), reverse=True)
    reasons: dict[int, list[str]] = {v.number: [] for v in versions}
    for v in newest_first:
        if v.label:
            reasons[v.number].append(f"labelled {v.label!r}")
        if v.pinned:
            reasons[v.number].append("pinned")

    last = policy.keep_last
    if last:
        reason = "last (unlimited)" if last == UNLIMITED else f"last {last}"
        for v in newest_first if last == UNLIMITED else newest_first[:last]:
            reasons[v.number].append(reason)

    for name, period_of in _PERIODS:
        remaining = getattr(policy, f"keep_{name}")
        previous: str | None = None
        for v in newest_first:
            if not remaining:
                break
            period = period_of(v.queued_at.astimezone(tz))
            if period != previous:  # newest first: the first seen is the period's newest
                previous = period
                reasons[v.number].append(f"{name} {period}")
                if remaining != UNLIMITED:
                    remaining -= 1

    within = policy.keep_within
    if within is not None and not within.is_zero and versions:
        reason = f"within {within} of latest"
        threshold = _within_threshold(versions, within, tz, now)
        for v in newest_first:
            if threshold is None or v.queued_at > threshold:
                reasons[v.number].append(reason)

    return [
        Decision(v, bool(reasons[v.number]), tuple(reasons[v.number]))
        for v in sorted(versions, key=lambda v: v.number)
    ]


def _within_threshold(
    versions: Sequence[VersionInfo], within: Duration, tz: tzinfo | None, now: datetime | None
) -> datetime | None:
    """Versions saved strictly after this are within; ``None`` means all are."""
    past = [v.queued_at for v in versions if now is None or v.queued_at <= now]
    if not past:
        return None
    try:
        return within.subtract_from(max(past).astimezone(tz))
    except OverflowError:
        return None  # further back than any datetime: everything is within


def _check(versions: Sequence[VersionInfo], now: datetime | None) -> None:
    """Refuse input whose order or buckets would be ambiguous."""
    if now is not None and now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    seen: set[int] = set()
    for v in versions:
        if v.queued_at.utcoffset() is None:
            raise ValueError(f"version {v.number}: queued_at must be timezone-aware")
        if v.number in seen:
            raise ValueError(f"version {v.number} is listed twice")
        seen.add(v.number)
