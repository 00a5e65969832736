"""Blackout windows for bulk runs (``FIBERFLOW_BULK_BLACKOUT``), all in UTC.

A comma-separated list of windows, each one of:

- ``Sat 00:00-Mon 06:00``: every week, from a weekday and time to a weekday and time
  (it may wrap around the end of the week: Sat -> Mon);
- ``Sun``: a whole weekday, every week;
- ``*-12-24``: a whole day every year (month-day);
- ``2026-12-31``: one whole date.

Windows may overlap or touch: the end of a blackout is where no window covers the time
any more (:func:`window_end`). Parsing is strict: a malformed part raises
:class:`BlackoutError` naming it, at start-up, never at the first bulk run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK = timedelta(days=7)
_WEEKLY = re.compile(r"^([A-Za-z]{3})\s+(\d{1,2}:\d{2})\s*-\s*([A-Za-z]{3})\s+(\d{1,2}:\d{2})$")
_YEARLY = re.compile(r"^\*-(\d{2})-(\d{2})$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# Chained windows end within this many hops (each hop jumps to a later window end).
_MAX_HOPS = 10_000


class BlackoutError(ValueError):
    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"FIBERFLOW_BULK_BLACKOUT: {part!r}: {reason}")
        self.part = part


@dataclass(frozen=True, slots=True)
class Weekly:
    """From ``start`` to ``end``, offsets from Monday 00:00 (end may be < start: wraps)."""

    start: timedelta
    end: timedelta

    def end_if_covering(self, now: datetime) -> datetime | None:
        monday = datetime.combine(now.date() - timedelta(days=now.weekday()), time(), UTC)
        offset = now - monday
        length = (self.end - self.start) % WEEK
        # The occurrence that started last, at or before now (this week's or last week's).
        begun = monday + self.start if offset >= self.start else monday + self.start - WEEK
        return begun + length if now < begun + length else None


@dataclass(frozen=True, slots=True)
class Day:
    """A whole day: a date (``year`` set) or the same month-day every year."""

    month: int
    day: int
    year: int | None = None

    def end_if_covering(self, now: datetime) -> datetime | None:
        d = now.date()
        if (d.month, d.day) != (self.month, self.day) or self.year not in (None, d.year):
            return None
        return datetime.combine(d + timedelta(days=1), time(), UTC)


Window = Weekly | Day


def _clock(part: str, text: str) -> timedelta:
    hours, _, minutes = text.partition(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise BlackoutError(part, f"{text} is not a time of day (00:00-23:59)")
    return timedelta(hours=h, minutes=m)


def _weekday(part: str, text: str) -> int:
    try:
        return DAYS.index(text.lower())
    except ValueError:
        raise BlackoutError(part, f"{text!r} is not a weekday (Mon..Sun)") from None


def _parse_one(part: str) -> Window:
    if m := _WEEKLY.match(part):
        start = timedelta(days=_weekday(part, m[1])) + _clock(part, m[2])
        end = timedelta(days=_weekday(part, m[3])) + _clock(part, m[4])
        if start == end:
            raise BlackoutError(part, "starts where it ends")
        return Weekly(start, end)
    if part.lower() in DAYS:
        start = timedelta(days=DAYS.index(part.lower()))
        return Weekly(start, (start + timedelta(days=1)) % WEEK)
    if m := _YEARLY.match(part):
        month, day = int(m[1]), int(m[2])
        try:
            date(2000, month, day)  # a leap year: *-02-29 is a day
        except ValueError:
            raise BlackoutError(part, "not a month and day") from None
        return Day(month, day)
    if m := _DATE.match(part):
        try:
            d = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise BlackoutError(part, "not a date") from None
        return Day(d.month, d.day, d.year)
    raise BlackoutError(
        part, "expected 'Sat 00:00-Mon 06:00', a weekday 'Sun', '*-12-24' or '2026-12-31'"
    )


def _whole_week(windows: list[Window]) -> bool:
    spans: list[tuple[timedelta, timedelta]] = []
    for w in windows:
        if isinstance(w, Weekly):
            if w.start < w.end:
                spans.append((w.start, w.end))
            else:
                spans += [(w.start, WEEK), (timedelta(0), w.end)]
    reach = timedelta(0)
    for start, end in sorted(spans):
        if start > reach:
            return False
        reach = max(reach, end)
    return reach >= WEEK


def parse(spec: str) -> tuple[Window, ...]:
    """The windows of ``spec`` (empty: none). BlackoutError names a malformed part."""
    parts = [p.strip() for p in spec.split(",")]
    if parts == [""]:
        return ()
    windows: list[Window] = []
    for part in parts:
        if not part:
            raise BlackoutError(spec, "an empty window (two commas, or a trailing comma)")
        windows.append(_parse_one(part))
    if _whole_week(windows):
        raise BlackoutError(spec, "the windows cover the whole week: no bulk run could ever start")
    return tuple(windows)


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def is_blackout(windows: tuple[Window, ...], now: datetime) -> bool:
    now = _utc(now)
    return any(w.end_if_covering(now) is not None for w in windows)


def window_end(windows: tuple[Window, ...], now: datetime) -> datetime:
    """When the blackout covering ``now`` ends (``now`` itself outside any window).

    Overlapping or touching windows are one blackout: it ends where none covers."""
    at = _utc(now)
    for _ in range(_MAX_HOPS):
        ends = [e for w in windows if (e := w.end_if_covering(at)) is not None]
        if not ends:
            return at
        at = max(ends)
    raise RuntimeError("blackout windows never end")  # excluded by parse()
