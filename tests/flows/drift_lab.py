"""Helpers of the drift-check tests: seeded services, configuration typed by hand over
SSH (as an engineer at the console would), RADIUS rows changed behind the system."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from netmiko import BaseConnection, ConnectHandler
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from fiberflow.core.db.models import RadCheck, RadReply, RadUserGroup
from fiberflow.lab.seed import on_devices, store
from fiberflow.lab.seed.plan import Planned, Taken, plan_services
from fiberflow.lab.seed.run import SeedPlan, apply_seed
from fiberflow.lab.seed.target import LabTarget
from tests.fixtures.lifecycle import TENANT, Lifecycle


def seed(lc: Lifecycle, n: int, tenant: str = TENANT) -> list[Planned]:
    """N active services, consistent in the database, the OLTs, the BNG and RADIUS (what
    ``fiberflow lab seed`` writes, into this test's in-process lab)."""
    inv = lc.lab.inventory
    admin = {d.name: ("127.0.0.1", lc.lab.device(d.name).port) for d in [*inv.olts, *inv.bngs]}
    target = LabTarget(inv, admin, "lab", None)
    taken = Taken()
    with Session(lc.engine) as s:
        store.read_taken(s, inv, taken)
    on_devices.read_taken(target, inv, taken)
    planned = plan_services(n, tenant, inv, taken)
    apply_seed(SeedPlan(target, lc.database_url, tenant, planned))
    return planned


@contextmanager
def console(lc: Lifecycle, device: str) -> Iterator[BaseConnection]:
    """An engineer's CLI session on a lab device (privileged)."""
    kind = "huawei_olt" if device.startswith("olt") else "cisco_ios"
    conn = ConnectHandler(device_type=kind, host="127.0.0.1", port=lc.lab.device(device).port,
                          username="lab", password="lab", secret="", use_keys=False,
                          allow_agent=False)  # fmt: skip
    try:
        conn.enable()
        yield conn
    finally:
        conn.disconnect()


def type_bng(lc: Lifecycle, lines: list[str], device: str = "bng-1") -> str:
    with console(lc, device) as conn:
        out = conn.send_config_set(lines)
    assert "% " not in out, out
    return out


def type_olt(lc: Lifecycle, device: str, lines: list[str]) -> str:
    """Lines typed in config mode (``interface gpon F/S`` ... ``quit`` as written)."""
    with console(lc, device) as conn:
        out = conn.send_config_set(lines, cmd_verify=False)
    assert "Failure" not in out, out
    return out


def delete_radius_rows(lc: Lifecycle, username: str, *models: type) -> None:
    with lc.engine.begin() as conn:
        for model in models or (RadCheck, RadReply, RadUserGroup):
            conn.execute(delete(model).where(model.username == username))  # type: ignore[attr-defined]


def change_radius_ip(lc: Lifecycle, username: str, ip: str) -> None:
    with lc.engine.begin() as conn:
        conn.execute(
            update(RadReply)
            .where(RadReply.username == username, RadReply.attribute == "Framed-IP-Address")
            .values(value=ip)
        )
