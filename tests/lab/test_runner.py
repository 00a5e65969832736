"""The composed device lab: inventory per DESIGN, real drivers end to end through it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.core.db.models.radius import RadGroupReply
from fiberflow.devices.base import DeviceError
from fiberflow.devices.bng.cisco import CiscoBng
from fiberflow.devices.inventory import load_inventory
from fiberflow.devices.olt.huawei import HuaweiOlt
from fiberflow.devices.radius import (
    SUSPENDED_GROUP,
    AuthStatus,
    CoaStatus,
    RadiusClient,
    RadiusStore,
    nas_target,
)
from fiberflow.devices.radius.policy import coa_attributes, walled_garden_reply
from fiberflow.lab.admin import admin_call
from fiberflow.lab.runner import LabStack, RunningLab, start_lab

SERIAL = "485754431A2B3C4D"


@pytest.fixture
def lab(database_url: str) -> Iterator[RunningLab]:
    with LabStack(database_url, ont_online_delay=0.2) as running:
        yield running


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_written_inventory_matches_design(lab: RunningLab, tmp_path: Path) -> None:
    path = lab.write_inventory(tmp_path / "sub" / "lab-inventory.yaml")
    inv = load_inventory(path)
    assert inv == lab.inventory
    assert [o.name for o in inv.olts] == ["olt-1", "olt-2"]
    assert [b.name for b in inv.bngs] == ["bng-1"]
    assert [p.name for p in inv.plans] == ["100M", "500M", "1G"]
    assert len({p.line_profile_id for p in inv.plans}) == 3
    for dev in [*inv.olts, *inv.bngs]:
        assert dev.host == "127.0.0.1" and dev.username == "lab" and dev.secret() == "lab"
        assert _tcp_open(dev.port), dev.name
    for olt in inv.olts:
        assert olt.bng == "bng-1" and olt.platform == "huawei_olt"
        ports = [f"0/{slot}/{p}" for slot in (1, 2) for p in range(16)]
        assert all(olt.has_port(fsp) for fsp in ports)
        assert not olt.has_port("0/1/16") and not olt.has_port("0/3/0")
    bng = inv.bng("bng-1")
    assert bng.platform == "cisco_ios" and bng.nas_port == lab.nas.port
    assert inv.radius.auth_port == lab.radius.port and inv.radius.secret == "lab"
    # (A UDP and a TCP port may share a number, so compare lists, not sets.)
    listed = [o.port for o in inv.olts] + [bng.port, inv.radius.auth_port, bng.nas_port]
    assert lab.ports == listed
    # The YAML carries no null fields and names the lab password only as the lab's.
    raw = yaml.safe_load(path.read_text())
    assert "password_env" not in raw["olts"][0]


def test_groups_exist_for_every_plan_and_suspended(lab: RunningLab) -> None:
    with Session(lab.engine) as s:
        groups = set(s.scalars(select(RadGroupReply.groupname)).all())
    assert groups == {"100M", "500M", "1G", SUSPENDED_GROUP}


def test_drivers_end_to_end_through_the_inventory(lab: RunningLab) -> None:
    inv = lab.inventory
    olt = HuaweiOlt(inv.olt("olt-1"))
    added = olt.add_ont("0/1/3", None, SERIAL, 10, 10, "cust-1")
    ont_id = added.detail["ont_id"]
    info = olt.get_ont("0/1/3", ont_id)
    assert info is not None and info.serial == SERIAL
    # Each OLT is its own device: olt-2 knows nothing of olt-1's ONT.
    assert HuaweiOlt(inv.olt("olt-2")).find_ont_by_serial(SERIAL) is None
    dump = admin_call(lab.admin["devices"]["olt-1"]["port"], "dump")
    assert [o["serial"] for o in dump["onts"]] == [SERIAL]

    plan = inv.plan("100M")
    bng = CiscoBng(inv.bng_for("olt-1"), inv.walled_garden_policy)
    bng.add_subscriber(100, "100.64.0.10", "255.255.0.0", plan.policy_in, plan.policy_out, "c1")
    sub = bng.get_subscriber(100)
    assert sub is not None and sub.policy_in == "PLAN-100M-IN"

    RadiusStore(lab.engine).activate("cust-1", "Pw-cust-1", "100.64.0.10", "100M")
    client = RadiusClient.from_inventory(inv.radius)
    auth = client.authenticate("cust-1", "Pw-cust-1")
    assert auth.status is AuthStatus.ACCEPT and auth.framed_ip == "100.64.0.10"
    assert "ip:sub-qos-policy-in=PLAN-100M-IN" in auth.attributes["Cisco-AVPair"]
    assert "cust-1" in lab.nas.sessions  # the NAS opened the session on Access-Accept

    nas = nas_target(inv.bng("bng-1"))
    attrs = coa_attributes(walled_garden_reply(inv.walled_garden_policy))
    coa = client.coa(nas, "cust-1", attrs)
    assert coa.status is CoaStatus.ACK
    assert lab.nas.sessions["cust-1"].attributes["Cisco-Account-Info"] == ["AWALLED-GARDEN"]
    assert client.disconnect(nas, "cust-1").acked
    gone = client.coa(nas, "cust-1", attrs)
    assert gone.status is CoaStatus.NAK and gone.error_code == 503


def test_ont_comes_online_after_the_configured_delay(lab: RunningLab) -> None:
    olt = HuaweiOlt(lab.inventory.olt("olt-2"))
    ont_id = olt.add_ont("0/2/15", None, SERIAL, 10, 10, "edge-port").detail["ont_id"]
    deadline = time.monotonic() + 10
    online = False
    while not online and time.monotonic() < deadline:
        info = olt.get_ont("0/2/15", ont_id)
        online = info is not None and info.online
        time.sleep(0.1)
    assert online


def test_describe_is_the_lab_file(lab: RunningLab, tmp_path: Path) -> None:
    ready = lab.write_ready_file(tmp_path / "lab.json", tmp_path / "inv.yaml")
    doc = json.loads(ready.read_text())
    assert doc["inventory"] == str(tmp_path / "inv.yaml")
    assert doc["ports"] == lab.ports
    assert {d["name"] for d in doc["devices"]} == {"olt-1", "olt-2", "bng-1", "radius", "nas"}
    assert doc["admin"]["username"] == "admin"
    assert set(doc["admin"]["devices"]) == {"olt-1", "olt-2", "bng-1"}
    bng_port = doc["admin"]["devices"]["bng-1"]["port"]
    assert admin_call(bng_port, "dump") == {"subinterfaces": []}
    assert not list(tmp_path.glob(".*.tmp"))


async def test_start_lab_in_a_running_loop_and_close(database_url: str) -> None:
    lab = await start_lab(database_url, command_latency=0.01)
    assert {dev.faults.snapshot().latency for dev in [*lab.olts.values(), lab.bng]} == {0.01}
    ports = [ep.port for ep in lab.endpoints if ep.transport == "tcp"]
    try:
        assert all([await asyncio.to_thread(_tcp_open, p) for p in ports])
    finally:
        await lab.close()
    assert not any([await asyncio.to_thread(_tcp_open, p) for p in ports])
    await lab.close()  # closing twice is harmless


def test_start_fails_cleanly_without_radius_tables(tmp_path: Path) -> None:
    # An unmigrated database: the group rows cannot be written, nothing is left running.
    before = set(threading.enumerate())
    stack = LabStack(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DeviceError, match="radgroupreply"):
        stack.start()
    with pytest.raises(RuntimeError):
        _ = stack.lab
    assert set(threading.enumerate()) <= before
