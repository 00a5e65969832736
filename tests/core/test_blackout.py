"""core/blackout.py: FIBERFLOW_BULK_BLACKOUT windows, parsed strictly at start-up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from fiberflow.core.blackout import BlackoutError, is_blackout, parse, window_end
from fiberflow.core.settings import Settings


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2026-12-05 is a Saturday, 2026-12-07 a Monday.
WEEKEND = parse("Sat 00:00-Mon 06:00")


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        ("2026-12-04T23:59", False),  # Friday night
        ("2026-12-05T00:00", True),  # Saturday, the start itself
        ("2026-12-06T12:00", True),  # Sunday
        ("2026-12-07T05:59", True),  # Monday morning: wrapped around the week
        ("2026-12-07T06:00", False),  # the end is not inside
        ("2026-12-09T12:00", False),
    ],
)
def test_weekly_window_wraps_around_the_week(now: str, inside: bool) -> None:
    assert is_blackout(WEEKEND, at(now)) is inside


def test_window_end_of_a_wrapping_window() -> None:
    assert window_end(WEEKEND, at("2026-12-05T10:00")) == at("2026-12-07T06:00")
    assert window_end(WEEKEND, at("2026-12-07T05:00")) == at("2026-12-07T06:00")
    # Outside a window: now.
    assert window_end(WEEKEND, at("2026-12-08T10:00")) == at("2026-12-08T10:00")


def test_whole_days_every_year_and_once() -> None:
    windows = parse("*-12-24, 2026-12-31")
    assert is_blackout(windows, at("2026-12-24T00:00"))
    assert is_blackout(windows, at("2031-12-24T23:59"))
    assert not is_blackout(windows, at("2026-12-25T00:00"))
    assert window_end(windows, at("2026-12-24T13:00")) == at("2026-12-25T00:00")
    assert is_blackout(windows, at("2026-12-31T08:00"))
    assert not is_blackout(windows, at("2027-12-31T08:00"))  # a date is one day only
    assert window_end(windows, at("2026-12-31T23:00")) == at("2027-01-01T00:00")


def test_overlapping_and_touching_windows_are_one_blackout() -> None:
    # 2026-12-24 is a Thursday: the date runs into the Thursday-evening window, which
    # overlaps the next; the blackout ends where the last one does.
    windows = parse("*-12-24,Thu 20:00-Fri 02:00,Fri 01:00-Fri 04:30")
    assert window_end(windows, at("2026-12-24T09:00")) == at("2026-12-25T04:30")
    assert window_end(windows, at("2026-12-25T01:30")) == at("2026-12-25T04:30")
    # A weekday as a whole day, touching the weekend window.
    touching = parse("Fri,Sat 00:00-Mon 06:00")
    assert window_end(touching, at("2026-12-04T08:00")) == at("2026-12-07T06:00")


def test_timezone_aware_times_compare_in_utc() -> None:
    from datetime import timedelta, timezone

    plus2 = timezone(timedelta(hours=2))
    # 01:00 Saturday at +02:00 is Friday 23:00 UTC: outside.
    assert not is_blackout(WEEKEND, datetime(2026, 12, 5, 1, 0, tzinfo=plus2))


def test_empty_is_no_window() -> None:
    assert parse("") == ()
    assert parse("  ") == ()
    assert not is_blackout((), at("2026-12-24T10:00"))


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("Sat 25:00-Mon 06:00", "Sat 25:00-Mon 06:00"),
        ("Sat 00:00-Mon 06:00,Xyz 01:00-Mon 02:00", "Xyz 01:00-Mon 02:00"),
        ("*-13-01", "*-13-01"),
        ("*-02-30", "*-02-30"),
        ("2026-02-29", "2026-02-29"),
        ("weekends", "weekends"),
        ("Sat 00:00-Sat 00:00", "Sat 00:00-Sat 00:00"),
        ("Sat 00:00-Mon 06:00,", "Sat 00:00-Mon 06:00,"),
        ("Mon 00:00-Thu 00:00,Wed 00:00-Mon 00:00", "whole week"),
    ],
)
def test_malformed_parts_are_named(spec: str, named: str) -> None:
    with pytest.raises(BlackoutError, match="FIBERFLOW_BULK_BLACKOUT") as err:
        parse(spec)
    assert named in str(err.value)


def test_settings_refuse_a_malformed_blackout_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIBERFLOW_BULK_BLACKOUT", "Sat 00:00-Mon 06:00,*-12-32")
    with pytest.raises(ValidationError, match=r"FIBERFLOW_BULK_BLACKOUT: '\*-12-32'"):
        Settings()
    monkeypatch.setenv("FIBERFLOW_BULK_BLACKOUT", "Sat 00:00-Mon 06:00,*-12-24")
    assert len(Settings().blackout_windows()) == 2


def test_bulk_settings_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert (s.bulk_rate, s.approval_threshold, s.bulk_blackout) == (60, 50, "")
    monkeypatch.setenv("FIBERFLOW_BULK_RATE", "0")
    with pytest.raises(ValidationError, match="bulk_rate"):
        Settings()
