"""Plug and unplug ONTs into the OLTs of a running lab, from another process.

The lab (``fiberflow lab``) writes ``lab.json`` to its data dir once it listens: which
devices run, and where their admin channels are. These functions read it, check their
input, and call the OLT's ``plug`` / ``unplug`` admin operations. Every refusal is a
``PlugError`` naming the problem, raised before anything changed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiberflow.lab.admin import LabAdminError, admin_call
from fiberflow.lab.olt_plugs import check_fsp, check_rx_power, check_serial
from fiberflow.lab.runner import LAB_FILE


class PlugError(Exception):
    """Bad input or no running lab: nothing was changed."""


@dataclass(frozen=True)
class OltAdmin:
    name: str
    host: str
    port: int
    password: str

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = admin_call(
                self.port, op, host=self.host, password=self.password, **args
            )
        except LabAdminError as exc:
            # The lab's refusal reads "ValueError: <what is wrong>": keep the second part.
            raise PlugError(f"{self.name}: {str(exc).partition(': ')[2] or exc}") from None
        except OSError as exc:
            raise PlugError(f"{self.name} does not answer ({exc}): is the lab running?") from None
        return result


def running_olts(data_dir: Path) -> dict[str, OltAdmin]:
    """The OLTs of the lab whose ready file is in ``data_dir``."""
    path = data_dir / LAB_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlugError(f"no running lab: {path} does not exist (start `fiberflow lab`)") from None
    except (OSError, ValueError) as exc:
        raise PlugError(f"no running lab: cannot read {path} ({exc})") from None
    if not _alive(doc.get("pid")):
        raise PlugError(f"no running lab: {path} is left from a lab that has stopped")
    admin = doc.get("admin", {})
    olts = {}
    for dev in doc.get("devices", []):
        if dev.get("kind") == "olt" and dev.get("name") in admin.get("devices", {}):
            where = admin["devices"][dev["name"]]
            olts[dev["name"]] = OltAdmin(
                dev["name"], where["host"], int(where["port"]), admin["password"]
            )
    return olts


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def _olt(olts: dict[str, OltAdmin], name: str) -> OltAdmin:
    if name not in olts:
        known = ", ".join(sorted(olts)) or "none"
        raise PlugError(f"--olt: no OLT {name!r} in the running lab (OLTs: {known})")
    return olts[name]


def plug(
    data_dir: Path, olt: str, pon_port: str, serial: str, rx_power_dbm: float | None
) -> dict[str, Any]:
    """Plug ``serial`` into ``pon_port`` of ``olt``; the lab's answer."""
    try:
        sn = check_serial(serial)
    except ValueError as exc:
        raise PlugError(f"--serial: {exc}") from None
    try:
        check_fsp(pon_port)
    except ValueError as exc:
        raise PlugError(f"--pon-port: {exc}") from None
    try:
        rx = None if rx_power_dbm is None else check_rx_power(rx_power_dbm)
    except ValueError as exc:
        raise PlugError(f"--rx-power: {exc}") from None
    target = _olt(running_olts(data_dir), olt)
    args: dict[str, Any] = {"fsp": pon_port.strip(), "serial": sn}
    if rx is not None:
        args["rx_power_dbm"] = rx
    return {"olt": target.name, **target.call("plug", **args)}


def unplug(data_dir: Path, serial: str, olt: str | None = None) -> list[str]:
    """Unplug ``serial`` (from ``olt``, or from every OLT that knows it): the OLTs changed."""
    try:
        sn = check_serial(serial)
    except ValueError as exc:
        raise PlugError(f"--serial: {exc}") from None
    olts = running_olts(data_dir)
    targets = [_olt(olts, olt)] if olt is not None else [olts[n] for n in sorted(olts)]
    done = [t.name for t in targets if t.call("unplug", serial=sn)["unplugged"]]
    if not done:
        where = targets[0].name if olt is not None else "any OLT of the running lab"
        raise PlugError(f"--serial: {sn} is neither plugged into nor registered on {where}")
    return done
