"""The lab's device state on disk: saved after changes, restored at the next start.

One file, ``lab-state.json`` in the data dir, holds every device (OLTs: ONTs,
service-ports, plugged fibres; BNGs: the uplink, sub-interfaces, deleted ones). It is
always whole: written to a temporary file in the same directory, flushed and fsynced,
renamed over the old one and the directory fsynced, so a lab killed at any moment
leaves the previous file or the new one, never half of one (temporary files a kill
leaves behind are removed at the next start). A file that cannot be read back is a
start-up error naming it, never a silent reset.

``Saver`` watches the devices from a thread: each poll (``interval``, 0.5 s) it checks a
cheap stamp per device (the BNG's last-change time, the OLT's count of CLI lines and
admin requests served plus its table sizes), snapshots only devices whose stamp moved,
and writes the file only if a snapshot differs from the one saved: at most one write
per interval, none while nothing changes. ``close`` saves once more, whatever changed.
Changes made from Python straight on a device's state object without touching a stamp
(tests do) are saved at the latest by that last save of a clean shutdown.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fiberflow.lab.devices import LabBng, LabOlt

log = logging.getLogger(__name__)

STATE_FILE = "lab-state.json"
FORMAT, VERSION = "fiberflow-lab-state", 1
SAVE_INTERVAL = 0.5

Device = LabOlt | LabBng


class LabStateError(Exception):
    """The saved state cannot be restored; the message names the file."""


def read_state(path: Path) -> dict[str, dict[str, Any]] | None:
    """Saved device name -> its snapshot, or None if there is no file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabStateError(f"lab state {path}: cannot read it ({exc})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise LabStateError(
            f"lab state {path} is not valid JSON ({exc}): cut short or damaged; "
            "restore it or remove it to start the lab empty"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise LabStateError(f"lab state {path} is not a fiberflow lab state file")
    if doc.get("version") != VERSION:
        raise LabStateError(f"lab state {path}: version {doc.get('version')!r}, not {VERSION}")
    devices = doc.get("devices")
    if not isinstance(devices, dict) or not all(isinstance(v, dict) for v in devices.values()):
        raise LabStateError(f"lab state {path}: no device table")
    return devices


def saved_olts(saved: Mapping[str, Any]) -> int:
    """How many OLTs the lab that saved this ran (olt-N is the last), 0 if none."""
    numbers = [int(n.rpartition("-")[2]) for n in saved if n.startswith("olt-")]
    return max(numbers, default=0)


def restore(path: Path, saved: Mapping[str, dict[str, Any]], devices: Mapping[str, Device]) -> None:
    """Put each saved device's state back; LabStateError naming the file if one does
    not fit (a device this lab does not run, or a snapshot it cannot hold)."""
    unknown = sorted(saved.keys() - devices.keys())
    if unknown:
        raise LabStateError(
            f"lab state {path} holds {', '.join(unknown)}, which this lab does not run "
            f"(it runs {', '.join(devices)}; start it with as many OLTs as before, --olts)"
        )
    for name, snapshot in saved.items():
        dev = devices[name]
        kind = "olt" if isinstance(dev, LabOlt) else "bng"
        try:
            if snapshot.get("kind") != kind:
                raise ValueError(f"saved as {snapshot.get('kind')!r}, runs as {kind!r}")
            dev.state.restore(snapshot)
        except ValueError as exc:
            raise LabStateError(f"lab state {path}: {name}: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:
            what = f"{type(exc).__name__}: {exc}"
            raise LabStateError(f"lab state {path}: {name}: not a snapshot ({what})") from None
    log.info("lab state restored", extra={"path": str(path), "devices": sorted(saved)})


def write_atomic(path: Path, data: bytes) -> None:
    """Readers, and a lab killed mid-write, see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def remove_leftovers(path: Path) -> None:
    """Temporary files of writes a killed lab never finished."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def _stamp(dev: Device) -> tuple[object, ...]:
    # Reads without the lock on purpose: it only decides whether to take a snapshot.
    if isinstance(dev, LabBng):
        st = dev.state
        return (st.changed, len(st.subifs), len(st.deleted))
    olt = dev.state
    return (dev.activity, len(olt.onts), len(olt.service_ports), len(olt.plugs.plugs),
            len(olt.plugs.dark))  # fmt: skip


def _snapshot(dev: Device) -> str:
    kind = "olt" if isinstance(dev, LabOlt) else "bng"
    return json.dumps({"kind": kind, **dev.state.snapshot()}, separators=(",", ":"))


class Saver:
    """Saves ``devices`` to ``path`` after changes (at most once per ``interval``)."""

    def __init__(self, path: Path, devices: Mapping[str, Device], interval: float = SAVE_INTERVAL):
        self.path, self.devices, self.interval = path, dict(devices), interval
        self._stamps: dict[str, tuple[object, ...]] = {}
        self._saved: dict[str, str] = {}  # device -> its snapshot in the file
        self._lock = threading.Lock()  # one save at a time (the thread, close)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-state", daemon=True)
        self.writes = 0

    def start(self) -> None:
        """Save once now (the file then matches the lab from the start), then watch."""
        self.save(force=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception:  # a full disk must not stop the lab; log and retry
                log.exception("lab state not saved", extra={"path": str(self.path)})

    def save(self, force: bool = False) -> bool:
        """Write the file if a device changed (``force``: look at every device); True
        if it was written."""
        with self._lock:
            changed = False
            for name, dev in self.devices.items():
                stamp = _stamp(dev)
                if not force and self._stamps.get(name) == stamp:
                    continue
                self._stamps[name] = stamp
                snap = _snapshot(dev)
                if self._saved.get(name) != snap:
                    self._saved[name], changed = snap, True
            if not changed and self.path.exists():
                return False
            body = ",".join(f"{json.dumps(n)}:{s}" for n, s in self._saved.items())
            head = json.dumps(
                {"format": FORMAT, "version": VERSION,
                 "saved_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
            )  # fmt: skip
            write_atomic(self.path, f'{head[:-1]},"devices":{{{body}}}}}\n'.encode())
            self.writes += 1
            return True

    def close(self) -> None:
        """Stop watching and save the final state."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.save(force=True)
        log.info("lab state saved", extra={"path": str(self.path), "writes": self.writes})
