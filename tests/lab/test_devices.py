"""The lab devices' ``seed`` admin op: bulk state without CLI sessions, and exactly the
state the CLI path (the real drivers over SSH) produces for the same services."""

from __future__ import annotations

from typing import Any

from fiberflow.devices.bng import CiscoBng
from fiberflow.devices.inventory import Bng, Olt
from fiberflow.devices.olt import HuaweiOlt
from fiberflow.lab.admin import admin_call
from fiberflow.lab.devices import LabBng, LabOlt

# Two services as provisioning configures them: (pon port, serial, plan profile, vlan, ip).
SERVICES = [
    ("0/1/3", "485754431A2B3C4D", 10, 123, "100.64.0.2", "ff-alice"),
    ("0/1/3", "485754431A2B3C4E", 20, 124, "100.64.0.3", "ff-bob"),
]
MASK = "255.255.0.0"
UPLINK = "GigabitEthernet0/0/1"


def _provision_by_cli(olt_inv: Olt, bng_inv: Bng) -> None:
    olt, bng = HuaweiOlt(olt_inv), CiscoBng(bng_inv)
    for fsp, serial, profile, vlan, ip, desc in SERVICES:
        added = olt.add_ont(fsp, None, serial, profile, profile, desc)
        olt.add_service_port(fsp, int(str(added.detail["ont_id"])), 1, vlan)
        bng.add_subscriber(vlan, ip, MASK, f"PLAN-{profile}-IN", f"PLAN-{profile}-OUT", desc)


def _seed_args() -> tuple[dict[str, Any], dict[str, Any]]:
    """What a bulk set-up sends: the ONT ids it chose, no service-port index."""
    onts, ports, subs = [], [], []
    for ont_id, (fsp, serial, profile, vlan, ip, desc) in enumerate(SERVICES):
        onts.append({"fsp": fsp, "ont_id": ont_id, "serial": serial, "description": desc,
                     "line_profile_id": profile, "service_profile_id": profile})  # fmt: skip
        ports.append({"fsp": fsp, "ont_id": ont_id, "gem_port": 1, "vlan": vlan})
        subs.append({"name": f"{UPLINK}.{vlan}", "description": desc, "outer_vlan": vlan,
                     "ip_address": ip, "netmask": MASK, "policy_in": f"PLAN-{profile}-IN",
                     "policy_out": f"PLAN-{profile}-OUT"})  # fmt: skip
    return {"onts": onts, "service_ports": ports}, {"subinterfaces": subs}


def _olt_dump(olt: LabOlt) -> dict[str, Any]:
    dump = olt.state.dump()
    for ont in dump["onts"]:
        ont.pop("online")  # time since activation, not configuration
    return dump


def test_seed_gives_what_the_cli_path_gives(
    olt_inventory: Olt, lab_olt: LabOlt, bng_inventory: Bng, lab_bng: LabBng
) -> None:
    _provision_by_cli(olt_inventory, bng_inventory)
    by_cli = _olt_dump(lab_olt), lab_bng.state.dump()
    olt_seen = HuaweiOlt(olt_inventory).list_service_ports("0/1/3", 1)
    sub_seen = CiscoBng(bng_inventory).get_subscriber(124)
    assert len(by_cli[0]["onts"]) == 2 and len(by_cli[1]["subinterfaces"]) == 2

    lab_olt.state.reset()
    lab_bng.state.reset()
    olt_args, bng_args = _seed_args()
    assert lab_olt.admin("seed", **olt_args) == {"onts": 2, "service_ports": 2, "failures": []}
    assert lab_bng.admin("seed", **bng_args) == {"subinterfaces": 2, "failures": []}

    assert (_olt_dump(lab_olt), lab_bng.state.dump()) == by_cli
    # and the drivers read it back the same way
    assert HuaweiOlt(olt_inventory).list_service_ports("0/1/3", 1) == olt_seen
    assert CiscoBng(bng_inventory).get_subscriber(124) == sub_seen


def test_seed_refuses_what_the_cli_refuses(lab_olt: LabOlt, lab_bng: LabBng) -> None:
    olt_args, bng_args = _seed_args()
    lab_olt.admin("seed", **olt_args)
    lab_bng.admin("seed", **bng_args)
    again = lab_olt.admin("seed", **olt_args)
    assert again["onts"] == again["service_ports"] == 0
    assert any("SN already exists" in f for f in again["failures"])
    assert any("Service virtual port has existed already" in f for f in again["failures"])

    clash = dict(bng_args["subinterfaces"][0], name=f"{UPLINK}.999")  # VID 123 is taken
    no_vlan = {"name": f"{UPLINK}.998", "ip_address": "100.64.0.9", "netmask": MASK}
    foreign = {"name": "Loopback0.5", "outer_vlan": 5}
    result = lab_bng.admin("seed", subinterfaces=[clash, no_vlan, foreign])
    assert result["subinterfaces"] == 0 and len(result["failures"]) == 3
    assert len(lab_bng.state.dump()["subinterfaces"]) == 2

    quoted = dict(olt_args["onts"][0], ont_id=9, serial="485754431A2B3C99", description='a"b')
    assert lab_olt.admin("seed", onts=[quoted])["onts"] == 0


def test_seed_and_reset_counters_over_the_admin_channel(
    olt_inventory: Olt, lab_olt: LabOlt
) -> None:
    olt_args, _ = _seed_args()
    assert admin_call(lab_olt.port, "seed", **olt_args)["onts"] == 2
    assert lab_olt.counters.logins == 0  # no CLI session was opened
    assert HuaweiOlt(olt_inventory).get_ont("0/1/3", 1) is not None
    assert admin_call(lab_olt.port, "counters")["logins"] == 1
    after = admin_call(lab_olt.port, "reset_counters")
    assert after["logins"] == after["commands"] == after["peak_open"] == 0
    assert len(lab_olt.state.dump()["onts"]) == 2  # state kept


def test_counters_add_up_the_latency_served(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    lab_olt.faults.update(latency=0.01, latency_match=r"^display ont info")
    olt = HuaweiOlt(olt_inventory)
    olt.get_ont("0/1/3", 0)
    olt.get_ont("0/1/3", 1)
    assert lab_olt.counters.to_dict()["latency_s"] == 0.02  # two delayed lines
    lab_olt.admin("reset_counters")
    assert lab_olt.counters.to_dict()["latency_s"] == 0
