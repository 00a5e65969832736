"""Fibres of one lab OLT: which ONT serial is physically plugged into which PON port.

An ONT registered (``ont add``) but never plugged or unplugged counts as connected, so
provisioning works without plugging anything. ``plug`` puts a serial on a port with a
receive power; an unregistered plugged serial is what ``display ont autofind`` lists.
``unplug`` takes it away: a registered ONT with that serial goes dark until plugged again.

Not locked on its own: OltState holds its lock around every call.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fiberflow.lab.ont_optics import default_rx_power

Fsp = tuple[int, int, int]

SERIAL = re.compile(r"[0-9A-Fa-f]{16}")
#: Receive powers the lab accepts: from far below sensitivity (-40 dBm, dark) to 0 dBm
#: (a strong overload); anything else is not a reading a PON port can give.
RX_MIN_DBM, RX_MAX_DBM = -40.0, 0.0


def check_serial(serial: str) -> str:
    """``serial`` upper-cased, or ValueError unless it is 16 hex digits."""
    if not SERIAL.fullmatch(serial):
        raise ValueError(f"serial {serial!r} is not 16 hex digits (e.g. 485754431A2B3C4D)")
    return serial.upper()


def check_fsp(text: str) -> Fsp:
    """``"0/1/3"`` -> ``(0, 1, 3)``, or ValueError."""
    m = re.fullmatch(r"(\d+)/(\d+)/(\d+)", text.strip())
    if m is None:
        raise ValueError(f"PON port {text!r} is not frame/slot/port (e.g. 0/1/3)")
    return int(m[1]), int(m[2]), int(m[3])


def check_rx_power(rx_dbm: float) -> float:
    value = float(rx_dbm)
    if not RX_MIN_DBM <= value <= RX_MAX_DBM:
        raise ValueError(f"rx power {value} dBm is outside {RX_MIN_DBM:g}..{RX_MAX_DBM:g} dBm")
    return round(value, 2)


@dataclass(frozen=True)
class Plug:
    serial: str
    fsp: Fsp
    rx_dbm: float
    plugged_at: float  # monotonic: when the ONT starts ranging
    found_at: datetime  # wall clock: the autofind time the OLT prints


class PlugBoard:
    def __init__(self) -> None:
        self.plugs: dict[str, Plug] = {}
        #: Serials unplugged and not plugged again: their registered ONTs are dark.
        self.dark: set[str] = set()

    def plug(self, serial: str, fsp: Fsp, rx_dbm: float | None) -> Plug:
        """Plug (or move) ``serial`` into ``fsp``; inputs already checked."""
        rx = default_rx_power(serial) if rx_dbm is None else rx_dbm
        plug = Plug(serial, fsp, rx, time.monotonic(), datetime.now(UTC))
        self.plugs[serial] = plug
        self.dark.discard(serial)
        return plug

    def unplug(self, serial: str) -> None:
        self.plugs.pop(serial, None)
        self.dark.add(serial)

    def reachable_since(self, serial: str, fsp: Fsp) -> float | None:
        """Since when an ONT with ``serial`` registered on ``fsp`` has light (0.0: always),
        or None when it has none (unplugged, or plugged into another port)."""
        plug = self.plugs.get(serial)
        if plug is not None:
            return plug.plugged_at if plug.fsp == fsp else None
        return None if serial in self.dark else 0.0

    def rx_power(self, serial: str) -> float:
        plug = self.plugs.get(serial)
        return default_rx_power(serial) if plug is None else plug.rx_dbm

    def clear(self) -> None:
        self.plugs.clear()
        self.dark.clear()

    def to_list(self) -> list[dict[str, object]]:
        return [
            {
                "serial": p.serial,
                "fsp": "/".join(map(str, p.fsp)),
                "rx_power_dbm": p.rx_dbm,
                "found_at": p.found_at.isoformat(timespec="seconds"),
            }
            for p in sorted(self.plugs.values(), key=lambda p: (p.fsp, p.plugged_at))
        ]
