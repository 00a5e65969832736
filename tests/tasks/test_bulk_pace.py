"""A bulk run's pace and per-device caps, as the parent's loop uses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fiberflow.tasks.bulk_pace import DeviceCaps, Pacer


def test_caps_count_each_device_of_a_service() -> None:
    caps = DeviceCaps({"olt-1": 2, "bng-1": 3})
    caps.take(("olt-1", "bng-1"))
    caps.take(("olt-1", "bng-1"))
    assert not caps.fits(("olt-1", "bng-1"))  # olt-1 is full
    assert caps.fits(("bng-1",))
    caps.give(("olt-1", "bng-1"))
    assert caps.fits(("olt-1", "bng-1"))
    # A device missing from the inventory gets one run at a time, not unlimited.
    caps.take(("olt-9",))
    assert not caps.fits(("olt-9",))


def test_the_pace_spaces_starts_and_a_restarted_parent_keeps_it() -> None:
    pacer = Pacer.per_minute(60)
    assert pacer.wait() == 0
    pacer.started()
    assert 0 < pacer.wait() <= 1.0
    # Restarted 0.25 s after its predecessor's last start: about 0.75 s still to wait.
    resumed = Pacer.per_minute(60, datetime.now(UTC) - timedelta(seconds=0.25))
    assert 0 < resumed.wait() <= 0.75
    # Long after the last start: at once.
    assert Pacer.per_minute(60, datetime.now(UTC) - timedelta(minutes=5)).wait() == 0
