"""The running lab a seed writes to: its ready file (``lab.json``), inventory and
devices' admin channels, and the database its RADIUS server reads."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from fiberflow.core.db.engine import normalize_url
from fiberflow.devices.inventory import Inventory, InventoryError, load_inventory
from fiberflow.lab.admin import LabAdminError, admin_call
from fiberflow.lab.runner import LAB_FILE
from fiberflow.lab.seed.errors import SeedFailed, SeedRefused

#: Seconds a bulk admin op may take (a full OLT's dump or seed is well under one).
ADMIN_TIMEOUT = 120.0


@dataclass(frozen=True)
class LabTarget:
    inventory: Inventory
    admin: dict[str, tuple[str, int]]  # device -> (host, port) of its admin channel
    password: str
    database: str | None  # the URL the lab reads, password hidden

    def call(self, device: str, op: str, **args: Any) -> Any:
        host, port = self.admin[device]
        try:
            return admin_call(
                port, op, host=host, password=self.password, timeout=ADMIN_TIMEOUT, **args
            )
        except (LabAdminError, OSError, EOFError) as exc:
            raise SeedFailed(f"{device}: admin {op} failed ({exc})") from None

    def call_all(self, op: str, calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``op`` on several devices at once (one admin session each): device -> answer
        (the first SeedFailed if one fails)."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {
                name: pool.submit(self.call, name, op, **args) for name, args in calls.items()
            }
            return {name: f.result() for name, f in futures.items()}

    def check_database(self, url: str) -> None:
        """SeedRefused unless ``url`` is the database the lab reads."""
        mine = make_url(normalize_url(url)).render_as_string(hide_password=True)
        if self.database is not None and self.database != mine:
            raise SeedRefused(
                f"the running lab reads the database {self.database}, not {mine} "
                "(give both the same FIBERFLOW_DATABASE_URL / --data-dir)"
            )


def find_lab(data_dir: Path) -> LabTarget:
    """The lab whose ready file is in ``data_dir``; SeedRefused if none runs there."""
    path = data_dir / LAB_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise SeedRefused(
            f"no running lab: {path} does not exist (start `fiberflow lab` or `fiberflow up`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise SeedRefused(f"no running lab: cannot read {path} ({exc})") from None
    if not _alive(doc.get("pid")):
        raise SeedRefused(f"no running lab: {path} is left from a lab that has stopped")
    try:
        inventory = load_inventory(doc["inventory"])
        admin = doc["admin"]
        devices = {
            name: (str(where["host"]), int(where["port"]))
            for name, where in admin["devices"].items()
        }
        password = str(admin["password"])
    except InventoryError as exc:
        raise SeedRefused(f"the running lab's inventory: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SeedRefused(f"no running lab: {path} is not a lab's ready file ({exc!r})") from None
    missing = {d.name for d in [*inventory.olts, *inventory.bngs]} - devices.keys()
    if missing:
        raise SeedRefused(f"{path}: no admin channel for {', '.join(sorted(missing))}")
    return LabTarget(inventory, devices, password, doc.get("database"))


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
