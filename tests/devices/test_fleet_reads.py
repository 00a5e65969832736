"""Whole-device reads over real SSH against the lab: one session each, typed values back,
an empty device is an empty fleet (not an error), and the BNG's orphan removal refuses
anything but a sub-interface of its uplink before it connects."""

from __future__ import annotations

import pytest

from fiberflow.devices.base import CommandRecord, InvalidInput
from fiberflow.devices.bng import CiscoBng
from fiberflow.devices.inventory import Bng, Olt
from fiberflow.devices.olt import HuaweiOlt
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.lab.devices import LabBng, LabOlt

UPLINK = "GigabitEthernet0/0/1"


def test_an_empty_olt_and_bng_read_as_empty_fleets(
    olt_inventory: Olt, bng_inventory: Bng, lab_olt: LabOlt, lab_bng: LabBng
) -> None:
    olt = HuaweiOlt(olt_inventory).read_fleet()
    assert (olt.device, olt.onts, olt.service_ports) == ("olt-1", (), ())
    bng = CiscoBng(bng_inventory).read_fleet()
    assert (bng.device, bng.uplink, bng.subinterfaces) == ("bng-1", UPLINK, ())


def test_olt_fleet_lists_every_ont_and_service_port_in_one_session(
    olt_inventory: Olt, lab_olt: LabOlt
) -> None:
    onts = [{"fsp": f"0/{s}/{p}", "ont_id": i, "serial": f"48575443{s:02X}{p:02X}{i:04X}",
             "description": f"d{i}", "line_profile_id": 10, "service_profile_id": 10}
            for s in (1, 2) for p in (0, 15) for i in (0, 127)]  # fmt: skip
    sps = [{"fsp": o["fsp"], "ont_id": o["ont_id"], "gem_port": 1, "vlan": 100 + n}
           for n, o in enumerate(onts)]  # fmt: skip
    lab_olt.seed(onts=onts, service_ports=sps)
    lab_olt.admin("set_ont_active", fsp="0/2/15", ont_id=127, active=False)
    records: list[CommandRecord] = []
    fleet = HuaweiOlt(olt_inventory, audit=records.append).read_fleet()
    assert {(o.fsp, o.ont_id, o.serial) for o in fleet.onts} == {
        (o["fsp"], o["ont_id"], o["serial"]) for o in onts
    }
    assert fleet.ont_at()[("0/2/15", 127)].control_flag == "deactivated"
    assert {(p.fsp, p.ont_id, p.vlan, p.gem_port) for p in fleet.service_ports} == {
        (s["fsp"], s["ont_id"], s["vlan"], 1) for s in sps
    }
    assert len(fleet.ports_of()[("0/1/0", 0)]) == 1
    assert [r.command for r in records if r.command.startswith("display")] == [
        "display ont info 0 all", "display service-port all"]  # fmt: skip
    assert lab_olt.counters.to_dict()["logins"] == 1


def test_bng_fleet_reads_the_running_config_and_removes_an_orphan(
    bng_inventory: Bng, lab_bng: LabBng
) -> None:
    subs = [{"name": f"{UPLINK}.{v}", "outer_vlan": v, "inner_vlan": None, "description": f"d{v}",
             "ip_address": f"100.64.0.{v - 90}", "netmask": "255.255.0.0",
             "policy_in": "PLAN-100M-IN", "policy_out": "PLAN-100M-OUT", "shutdown": False}
            for v in (100, 101, 102)]  # fmt: skip
    lab_bng.seed(subinterfaces=subs)
    driver = CiscoBng(bng_inventory)
    fleet = driver.read_fleet()
    assert sorted(fleet.by_vlan()) == [100, 101, 102]
    got = fleet.by_vlan()[101]
    assert (got.name, got.ip_address, got.netmask, got.policy_in, got.policy_out) == (
        f"{UPLINK}.101", "100.64.0.11", "255.255.0.0", "PLAN-100M-IN", "PLAN-100M-OUT")  # fmt: skip
    assert driver.remove_interface(f"{UPLINK}.101").changed
    assert not driver.remove_interface(f"{UPLINK}.101").changed  # idempotent
    assert sorted(driver.read_fleet().by_vlan()) == [100, 102]
    logins = lab_bng.counters.to_dict()["logins"]
    for bad in (UPLINK, "GigabitEthernet0/0/2.100", f"{UPLINK}.100\nreload", "Loopback0"):
        with pytest.raises(InvalidInput):
            driver.remove_interface(bad)
    assert lab_bng.counters.to_dict()["logins"] == logins  # refused before any session


def test_radius_read_all_is_every_user_with_their_rows(database_url: str) -> None:
    from fiberflow.core.db.engine import make_engine

    engine = make_engine(database_url)
    store = RadiusStore(engine)
    store.activate("ff-a", "pw-a", "100.64.0.2", "100M", netmask="255.255.0.0")
    store.activate("ff-b", "pw-b", "100.64.0.3", "1G")
    store.set_group("ff-b", "suspended")
    users = store.read_all()
    assert sorted(users) == ["ff-a", "ff-b"]
    a = users["ff-a"]
    assert (a.password, a.ip_address, a.netmask, a.groups) == (
        "pw-a", "100.64.0.2", "255.255.0.0", ("100M",))  # fmt: skip
    assert users["ff-b"].groups == ("suspended",) and users["ff-b"].netmask is None
    assert users == {name: store.get(name) for name in users}
    engine.dispose()
