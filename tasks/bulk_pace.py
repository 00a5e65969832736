"""How fast a bulk run starts services: a steady rate, and per-device caps.

The rate (``FIBERFLOW_BULK_RATE`` per minute) is a pace, one start every 60/rate
seconds, not bursts: :class:`Pacer` hands out start times spaced by that interval,
counted from the last start (read back from the items after a restart).

The caps keep a bulk run from having more services in flight on a device than
``FIBERFLOW_BULK_RUNS_PER_SESSION`` (default 4) times the device's ``max_sessions``. The
hard limit on sessions, across every run and process, is the device's Prefect global
concurrency limit (tasks/devices.py ``device_slot``): a run holds a session for a part
of its time only (a suspension: a few of its ~15 s at 200 ms a command), so capping
runs at the session count (4 on the lab's BNG) left the sessions idle most of the time
and a batch at ~15 starts a minute whatever its rate. The cap keeps a batch on a slow
device from queueing its runs on those slots until they time out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class Pacer:
    """Start times at most one per ``interval`` seconds (monotonic clock)."""

    interval: float
    _next: float = 0.0

    @classmethod
    def per_minute(cls, rate: float, last_start: datetime | None = None) -> Pacer:
        pacer = cls(60.0 / rate)
        if last_start is not None:
            # A restarted parent keeps the pace its predecessor had.
            at = last_start if last_start.tzinfo else last_start.replace(tzinfo=UTC)
            since = (datetime.now(UTC) - at).total_seconds()
            pacer._next = time.monotonic() + max(0.0, pacer.interval - since)
        return pacer

    def wait(self) -> float:
        """Seconds until the next start may happen (0: now)."""
        return max(0.0, self._next - time.monotonic())

    def started(self) -> None:
        self._next = time.monotonic() + self.interval


@dataclass
class DeviceCaps:
    """In-flight services per device, each capped at its limit."""

    limits: Mapping[str, int]
    in_flight: Counter[str] = field(default_factory=Counter)

    def fits(self, devices: Iterable[str]) -> bool:
        return all(self.in_flight[d] < self.limits.get(d, 1) for d in devices)

    def take(self, devices: Iterable[str]) -> None:
        for d in devices:
            self.in_flight[d] += 1

    def give(self, devices: Iterable[str]) -> None:
        for d in devices:
            self.in_flight[d] = max(0, self.in_flight[d] - 1)
