"""The all-or-nothing ``seed`` (``atomic: true``) and ``unseed`` admin ops, and admin
requests too long for an exec line (sent on stdin)."""

from __future__ import annotations

from typing import Any

from fiberflow.lab.admin import INLINE_LIMIT, admin_call
from fiberflow.lab.devices import LabBng, LabOlt

UPLINK = "GigabitEthernet0/0/1"


def _ont(fsp: str, ont_id: int, serial: str) -> dict[str, Any]:
    return {"fsp": fsp, "ont_id": ont_id, "serial": serial, "description": f"ff-{ont_id}",
            "line_profile_id": 10, "service_profile_id": 10}  # fmt: skip


def _sub(vlan: int, name: int | None = None) -> dict[str, Any]:
    return {"name": f"{UPLINK}.{name or vlan}", "description": f"ff-{vlan}", "outer_vlan": vlan,
            "ip_address": f"100.64.{vlan // 200}.{vlan % 200 + 2}", "netmask": "255.255.0.0",
            "policy_in": "PLAN-100M-IN", "policy_out": "PLAN-100M-OUT"}  # fmt: skip


def _config(olt: LabOlt) -> dict[str, Any]:
    dump = olt.state.dump()
    for ont in dump["onts"]:
        ont.pop("online")  # time since activation, not configuration
    return dump


def test_olt_batch_with_one_refusal_changes_nothing(lab_olt: LabOlt) -> None:
    admin_call(lab_olt.port, "seed", onts=[_ont("0/1/0", 0, "4857544300000000")])
    before = _config(lab_olt)
    cases = [
        [_ont("0/1/1", 0, "4857544300000001"), _ont("0/1/1", 1, "4857544300000000")],  # SN
        [_ont("0/1/1", 0, "4857544300000001"), _ont("0/1/1", 0, "4857544300000002")],  # id
        [_ont("0/1/1", 0, "4857544300000001"), _ont("0/9/0", 0, "4857544300000002")],  # port
        [_ont("0/1/1", 0, "4857544300000001"), _ont("0/1/1", 128, "4857544300000002")],
    ]
    for onts in cases:
        result = admin_call(lab_olt.port, "seed", atomic=True, onts=onts)
        assert result["onts"] == 0 and len(result["failures"]) == 1, result
        assert _config(lab_olt) == before
    ports = [{"fsp": "0/1/1", "ont_id": 0, "gem_port": 1, "vlan": 100},
             {"fsp": "0/1/1", "ont_id": 5, "gem_port": 1, "vlan": 101}]  # fmt: skip
    onts = [_ont("0/1/1", 0, "4857544300000001")]
    result = admin_call(lab_olt.port, "seed", atomic=True, onts=onts, service_ports=ports)
    assert result["failures"] == ["service-port vlan 101 0/1/1 ont 5:  Failure: The required "
                                  "ONT does not exist"]  # fmt: skip
    assert _config(lab_olt) == before


def test_olt_batch_applies_whole_and_unseed_takes_it_back(lab_olt: LabOlt) -> None:
    onts = [_ont(f"0/{1 + i % 32 // 16}/{i % 16}", i // 32, f"48575443{i:08X}") for i in range(100)]
    ports = [{"fsp": o["fsp"], "ont_id": o["ont_id"], "gem_port": 1, "vlan": 100 + i}
             for i, o in enumerate(onts)]  # fmt: skip
    result = admin_call(lab_olt.port, "seed", atomic=True, onts=onts, service_ports=ports)
    assert result == {"onts": 100, "service_ports": 100, "failures": []}
    assert len(lab_olt.state.dump()["service_ports"]) == 100
    # Someone re-used one place with another serial since: unseed leaves it alone.
    lab_olt.state.delete_ont((0, 1, 0, 0), force=True)
    lab_olt.state.add_ont((0, 1, 0, 0), "48575443FFFFFFFF", "other", 10, 10)
    assert admin_call(lab_olt.port, "unseed", onts=onts) == {"onts": 99}
    assert [o["serial"] for o in lab_olt.state.dump()["onts"]] == ["48575443FFFFFFFF"]
    assert lab_olt.state.dump()["service_ports"] == []


def test_bng_batch_with_one_refusal_changes_nothing(lab_bng: LabBng) -> None:
    admin_call(lab_bng.port, "seed", subinterfaces=[_sub(100)])
    before = lab_bng.state.dump()
    cases = [
        [_sub(101), _sub(100)],  # exists
        [_sub(101), _sub(102, name=103), _sub(102)],  # VID twice in the batch
        [_sub(101), {**_sub(104), "name": "Loopback0.104"}],
        [_sub(101), {**_sub(105), "outer_vlan": None}],
        [_sub(101), {**_sub(106), "colour": "red"}],
    ]
    for subs in cases:
        result = admin_call(lab_bng.port, "seed", atomic=True, subinterfaces=subs)
        assert result["subinterfaces"] == 0 and len(result["failures"]) == 1, result
        assert lab_bng.state.dump() == before


def test_bng_unseed_leaves_no_deleted_listing(lab_bng: LabBng) -> None:
    subs = [_sub(v) for v in range(200, 210)]
    assert admin_call(lab_bng.port, "seed", atomic=True, subinterfaces=subs)["subinterfaces"] == 10
    assert admin_call(lab_bng.port, "unseed", subinterfaces=subs) == {"subinterfaces": 10}
    assert lab_bng.state.dump() == {"subinterfaces": []}
    assert lab_bng.state.listed() == []


def test_requests_longer_than_an_exec_line_go_on_stdin(lab_bng: LabBng) -> None:
    subs = [_sub(v) for v in range(2, 4002)]
    assert len(str(subs)) > 10 * INLINE_LIMIT
    result = admin_call(lab_bng.port, "seed", atomic=True, subinterfaces=subs)
    assert result == {"subinterfaces": 4000, "failures": []}
    assert lab_bng.activity > 0
