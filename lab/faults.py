"""Fault injection settings of one lab device (set by config, Python or the admin channel)."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Faults:
    #: Seconds to wait before answering a command (every command, or only those matching).
    latency: float = 0.0
    latency_match: str | None = None
    #: Refuse every login of the CLI user (the admin user is never refused).
    auth_failure: bool = False
    #: Drop the SSH connection when a command matches this regex, after echoing it.
    drop_match: str | None = None
    #: With drop_match: run the command first, then drop (the change is made, the reply lost).
    drop_after_run: bool = False
    #: regex -> text printed instead of running a matching command.
    error_replies: dict[str, str] = field(default_factory=dict)
    #: ONT serials that stay offline after activation (OLT only).
    never_online: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["never_online"] = sorted(self.never_online)
        return data


class FaultSet:
    """Thread-safe holder: tests change faults from their thread while the lab loop reads."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults or Faults()

    def snapshot(self) -> Faults:
        with self._lock:
            return self.snapshot_unlocked()

    def update(self, **changes: Any) -> Faults:
        """Set some fault fields, e.g. ``update(latency=0.5, drop_match=r"^ont add")``."""
        for key in ("latency_match", "drop_match", *changes.get("error_replies", {})):
            value = changes.get(key)
            if isinstance(value, str):
                re.compile(value)  # fail here, not inside a device session
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self._faults, key):
                    raise ValueError(f"unknown fault {key!r}")
                if key == "never_online":
                    value = set(value)
                elif key == "error_replies":
                    value = dict(value)
                elif key == "latency":
                    value = float(value)
                setattr(self._faults, key, value)
            return self.snapshot_unlocked()

    def snapshot_unlocked(self) -> Faults:
        f = self._faults
        return Faults(
            latency=f.latency,
            latency_match=f.latency_match,
            auth_failure=f.auth_failure,
            drop_match=f.drop_match,
            drop_after_run=f.drop_after_run,
            error_replies=dict(f.error_replies),
            never_online=set(f.never_online),
        )

    def clear(self) -> None:
        with self._lock:
            self._faults = Faults()

    # Helpers used by the session loop -------------------------------------------------

    def latency_for(self, command: str) -> float:
        f = self.snapshot()
        if f.latency <= 0:
            return 0.0
        if f.latency_match is None or re.search(f.latency_match, command):
            return f.latency
        return 0.0

    def drops(self, command: str) -> bool:
        f = self.snapshot()
        return f.drop_match is not None and re.search(f.drop_match, command) is not None

    def error_reply(self, command: str) -> str | None:
        for pattern, text in self.snapshot().error_replies.items():
            if re.search(pattern, command):
                return text
        return None

    def never_online(self, serial: str) -> bool:
        return serial in self.snapshot().never_online
