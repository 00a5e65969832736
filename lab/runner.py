"""The whole device lab in one call: olt-1, olt-2, bng-1 (``olts=N``: up to olt-N and the
BNGs they hang off, lab_inventory.py), the lab RADIUS server and NAS.

Inside an event loop::

    lab = await start_lab("sqlite:///lab.db")
    lab.inventory                   # devices.inventory.Inventory pointing at the lab
    lab.write_inventory("lab.yaml") # load_inventory() reads it back unchanged
    await lab.close()

From synchronous code (tests, the CLI), the lab runs in a background loop thread::

    with LabStack("sqlite:///lab.db") as lab:
        HuaweiOlt(lab.inventory.olt("olt-1")).add_ont(...)

Every listener binds port 0 on ``host`` (the OS picks a free port), so several labs run
side by side. The RADIUS server reads ``database_url`` (FreeRADIUS's rlm_sql tables,
which must exist: run the migrations first); the NAS follows it, so a subscriber the
RADIUS server accepts has a session for CoA / Disconnect. The plan and ``suspended``
group rows are written at start (``RadiusStore.ensure_groups``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from fiberflow.core.db.engine import make_engine
from fiberflow.devices.inventory import Inventory
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.lab.cli_servers import LabThread, start_bng, start_olt
from fiberflow.lab.devices import LabBng, LabOlt
from fiberflow.lab.faults import Faults
from fiberflow.lab.lab_inventory import (
    BNG_NAME,
    DEFAULT_OLTS,
    LAB_PASSWORD,
    LAB_SECRET,
    bng_names,
    build_inventory,
    olt_names,
    write_atomic,
    write_inventory,
)
from fiberflow.lab.nas import LabNas, start_nas
from fiberflow.lab.persist import Saver, read_state, remove_leftovers, restore, saved_olts
from fiberflow.lab.radius_server import LabRadius, start_radius
from fiberflow.lab.ssh_server import ADMIN_USER

log = logging.getLogger(__name__)

DEFAULT_ONT_ONLINE_DELAY = 1.0
#: Written to the data dir once everything listens; ``fiberflow up`` waits for it.
LAB_FILE = "lab.json"
INVENTORY_FILE = "lab-inventory.yaml"


@dataclass(frozen=True)
class Endpoint:
    """One listening lab service."""

    name: str
    kind: str  # "olt", "bng", "radius" (auth) or "nas" (RFC 5176 CoA / Disconnect)
    platform: str  # the inventory platform, or "radius" / "radius-dynauth"
    host: str
    port: int
    transport: str  # "tcp" (SSH) or "udp"


class RunningLab:
    """A started lab. Close it with ``await lab.close()`` (or use LabStack)."""

    def __init__(
        self,
        *,
        olts: dict[str, LabOlt],
        bngs: dict[str, LabBng],
        radius: LabRadius,
        nas: LabNas,
        engine: Engine,
        host: str,
        saver: Saver | None = None,
    ) -> None:
        self.olts = olts
        self.bngs = bngs
        self.radius = radius
        self.nas = nas
        self.engine = engine
        self.host = host
        self.saver = saver
        self.inventory: Inventory = build_inventory(
            host=host,
            olt_ports={name: olt.port for name, olt in olts.items()},
            bng_port=bngs[BNG_NAME].port,
            bng_ports={name: b.port for name, b in bngs.items() if name != BNG_NAME},
            radius_port=radius.port,
            nas_port=nas.port,
        )
        self._closed = False

    @property
    def bng(self) -> LabBng:
        """bng-1, the BNG every lab has (olt-1 and olt-2 hang off it)."""
        return self.bngs[BNG_NAME]

    def device(self, name: str) -> LabOlt | LabBng:
        """The SSH device called ``name`` (KeyError if there is none)."""
        if name in self.olts:
            return self.olts[name]
        return self.bngs[name]

    @property
    def endpoints(self) -> list[Endpoint]:
        eps = [
            Endpoint(n, "olt", "huawei_olt", self.host, o.port, "tcp") for n, o in self.olts.items()
        ]
        eps += [
            Endpoint(n, "bng", "cisco_ios", self.host, b.port, "tcp") for n, b in self.bngs.items()
        ]
        eps.append(Endpoint("radius", "radius", "radius", self.host, self.radius.port, "udp"))
        eps.append(Endpoint("nas", "nas", "radius-dynauth", self.host, self.nas.port, "udp"))
        return eps

    @property
    def ports(self) -> list[int]:
        """Every port the lab listens on (SSH over TCP, RADIUS and NAS over UDP)."""
        return [ep.port for ep in self.endpoints]

    @property
    def admin(self) -> dict[str, Any]:
        """How another process reaches each device's admin channel (lab.admin)."""
        return {
            "protocol": "ssh",
            "username": ADMIN_USER,
            "password": LAB_PASSWORD,  # the lab's admin password: a lab, not a secret
            "devices": {
                name: {"host": dev.host, "port": dev.port, "ops": sorted(dev.admin_ops())}
                for name, dev in {**self.olts, **self.bngs}.items()
            },
        }

    def write_inventory(self, path: Path | str) -> Path:
        """Write the inventory YAML (atomically); returns the path written."""
        return write_inventory(self.inventory, path)

    def describe(self, inventory_path: Path | str | None = None) -> dict[str, Any]:
        """The ``lab.json`` document: where the inventory is and what listens where."""
        return {
            "inventory": None if inventory_path is None else str(inventory_path),
            # Which database the lab's RADIUS server reads (``lab seed`` checks it writes
            # the same one); never its password.
            "database": self.engine.url.render_as_string(hide_password=True),
            "pid": os.getpid(),
            "ports": self.ports,
            "devices": [asdict(ep) for ep in self.endpoints],
            "admin": self.admin,
        }

    def write_ready_file(self, path: Path | str, inventory_path: Path | str) -> Path:
        """Write ``describe()`` as JSON atomically: its appearance means "the lab is ready"."""
        target = Path(path)
        write_atomic(target, json.dumps(self.describe(inventory_path), indent=2) + "\n")
        return target

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.saver is not None:
            await asyncio.to_thread(self.saver.close)  # the final state, before devices go
        await self.nas.close()
        await self.radius.close()
        await _close_devices([*self.olts.values(), *self.bngs.values()])
        self.engine.dispose()
        log.info("lab stopped")


async def _close_devices(devices: list[LabOlt | LabBng]) -> None:
    for dev in devices:
        dev.close()
    for dev in devices:
        await dev.wait_closed()


async def start_lab(
    database_url: str,
    *,
    host: str = "127.0.0.1",
    ont_online_delay: float = DEFAULT_ONT_ONLINE_DELAY,
    command_latency: float = 0.0,
    olts: int | None = None,
    state_file: Path | None = None,
) -> RunningLab:
    """Start olt-1 .. olt-``olts`` and their BNGs (bng-1 ..), the lab RADIUS server
    (reading ``database_url``) and NAS.

    ``ont_online_delay``: seconds a newly activated ONT takes to report online;
    ``command_latency``: seconds every SSH device waits before answering a command;
    ``olts``: default as many as the saved state has, at least two;
    ``state_file``: the devices' state is restored from it (if it exists) and saved to
    it after changes and at close (lab/persist.py); LabStateError if it cannot be read.
    """
    saved = None
    if state_file is not None:
        remove_leftovers(state_file)
        saved = read_state(state_file)  # a damaged file stops us before anything starts
    if olts is None:
        olts = max(DEFAULT_OLTS, saved_olts(saved or {}))
    names = olt_names(olts)  # ValueError before anything starts
    engine = make_engine(database_url)
    devices: list[LabOlt | LabBng] = []
    radius: LabRadius | None = None
    nas: LabNas | None = None
    saver: Saver | None = None
    try:
        for name in names:
            faults = Faults(latency=command_latency)
            devices.append(
                await start_olt(name, host, 0, online_delay=ont_online_delay, faults=faults)
            )
        for name in bng_names(olts):
            devices.append(await start_bng(name, host, 0, faults=Faults(latency=command_latency)))
        by_name = {d.name: d for d in devices}
        if state_file is not None:
            if saved:
                restore(state_file, saved, by_name)
            saver = Saver(state_file, by_name)
            await asyncio.to_thread(saver.start)
        radius = await start_radius(host, 0, LAB_SECRET, engine=engine)
        nas = await start_nas(host, 0, LAB_SECRET, radius=radius)
        lab = RunningLab(
            olts={d.name: d for d in devices if isinstance(d, LabOlt)},
            bngs={d.name: d for d in devices if isinstance(d, LabBng)},
            radius=radius,
            nas=nas,
            engine=engine,
            host=host,
            saver=saver,
        )
        store = RadiusStore(engine, name="lab-radius-sql")
        inv = lab.inventory
        await asyncio.to_thread(store.ensure_groups, inv.plans, inv.walled_garden_policy)
    except BaseException:
        if saver is not None:
            saver.close()
        if nas is not None:
            await nas.close()
        if radius is not None:
            await radius.close()
        await _close_devices(devices)
        engine.dispose()
        raise
    log.info(
        "lab ready",
        extra={"ports": lab.ports, "olts": list(lab.olts), "bngs": list(lab.bngs)},
    )
    return lab


class LabStack:
    """The lab in a background event-loop thread, for synchronous callers.

    ``with LabStack(url) as lab: ...`` starts it and closes it (``start()`` / ``close()``
    do the same by hand). Options are those of ``start_lab``.
    """

    def __init__(self, database_url: str, **options: Any) -> None:
        self.database_url = database_url
        self.options = options
        self._thread: LabThread | None = None
        self._lab: RunningLab | None = None

    @property
    def lab(self) -> RunningLab:
        if self._lab is None:
            raise RuntimeError("the lab is not running (call start())")
        return self._lab

    def start(self, timeout: float = 60.0) -> RunningLab:
        if self._lab is not None:
            return self._lab
        self._thread = LabThread()
        try:
            self._lab = self._thread.run(start_lab(self.database_url, **self.options), timeout)
        except BaseException:
            _stop_thread(self._thread)
            self._thread = None
            raise
        return self._lab

    def close(self) -> None:
        thread, lab = self._thread, self._lab
        self._thread = self._lab = None
        if thread is None:
            return
        try:
            if lab is not None:
                thread.run(lab.close(), 30.0)
        finally:
            _stop_thread(thread)

    def __enter__(self) -> RunningLab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stop_thread(thread: LabThread) -> None:
    """Stop the loop thread, its to_thread() workers included, and free the loop."""
    try:
        thread.run(thread.loop.shutdown_default_executor(), 10.0)
    finally:
        thread.stop()
        if not thread.loop.is_running():
            thread.loop.close()
