"""CiscoBng over real SSH against the lab BNG, and its parser on the real capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiberflow.devices.base import CommandRecord, InvalidInput
from fiberflow.devices.bng import CiscoBng, ConfigRejected, SubscriberNotFound
from fiberflow.devices.bng.parsing import parse_running_interfaces
from fiberflow.devices.inventory import Bng
from fiberflow.lab.devices import LabBng

CAPTURE = Path(__file__).parent / "captures" / "cisco_ios" / "show_running-config_interface.raw"
IFACE = "GigabitEthernet0/0/1"
PLAN = ("PLAN-100M-IN", "PLAN-100M-OUT")


def test_parse_capture() -> None:
    subs = parse_running_interfaces(CAPTURE.read_text())
    assert len(subs) == 6
    first = subs[0]
    assert (first.name, first.vlan, first.inner_vlan) == ("GigabitEthernet2/0/4.223415", 2234, 15)
    assert (first.ip_address, first.netmask) == ("10.30.33.161", "255.255.255.252")
    assert (first.policy_in, first.policy_out) == (
        "VIPSIP_POLICY_2048_V1",
        "VIPSIP_POLICY_2048_OUT",
    )


def test_single_interface_ending_in_end_parses() -> None:
    text = (
        "Building configuration...\n\nCurrent configuration : 99 bytes\n!\n"
        f"interface {IFACE}.7\n description x\n encapsulation dot1Q 7\n"
        " ip address 10.0.0.1 255.255.255.252\n service-policy input A\nend\n"
    )
    (sub,) = parse_running_interfaces(text)
    assert (sub.vlan, sub.policy_in, sub.policy_out) == (7, "A", None)


def test_subscriber_lifecycle(bng_inventory: Bng, lab_bng: LabBng) -> None:
    records: list[CommandRecord] = []
    bng = CiscoBng(bng_inventory, walled_garden_policy="WALLED-GARDEN", audit=records.append)
    assert bng.get_subscriber(100) is None

    added = bng.add_subscriber(100, "100.64.0.2", "255.255.255.252", *PLAN, "svc-1")
    assert added.changed and "encapsulation dot1Q 100" in added.diff
    assert not bng.add_subscriber(100, "100.64.0.2", "255.255.255.252", *PLAN, "svc-1").changed
    sub = bng.get_subscriber(100)
    assert sub is not None
    assert (sub.name, sub.vlan, sub.inner_vlan, sub.description) == (
        f"{IFACE}.100",
        100,
        None,
        "svc-1",
    )
    assert (sub.ip_address, sub.netmask, sub.policy_in, sub.policy_out) == (
        "100.64.0.2",
        "255.255.255.252",
        *PLAN,
    )

    assert bng.apply_walled_garden(100).changed
    assert not bng.apply_walled_garden(100).changed
    sub = bng.get_subscriber(100)
    assert sub is not None and (sub.policy_in, sub.policy_out) == ("WALLED-GARDEN", "WALLED-GARDEN")
    assert bng.restore_plan(100, *PLAN).changed
    assert not bng.restore_plan(100, *PLAN).changed

    qinq = bng.add_subscriber(101, "100.64.0.6", "255.255.255.252", *PLAN, "svc-2", inner_vlan=42)
    assert qinq.changed
    sub2 = bng.get_subscriber(101)
    assert sub2 is not None and (sub2.vlan, sub2.inner_vlan) == (101, 42)

    assert bng.remove_subscriber(100).changed
    assert not bng.remove_subscriber(100).changed
    assert bng.get_subscriber(100) is None
    assert [s["name"] for s in lab_bng.state.dump()["subinterfaces"]] == [f"{IFACE}.101"]
    assert any(r.command == f"interface {IFACE}.100" for r in records)


def test_drift_is_read_and_repaired(bng_inventory: Bng, lab_bng: LabBng) -> None:
    bng = CiscoBng(bng_inventory)
    bng.add_subscriber(300, "100.64.1.2", "255.255.255.252", *PLAN, "svc-3")
    lab_bng.admin("set_policy", interface=f"{IFACE}.300", direction="output", policy="ROGUE")
    sub = bng.get_subscriber(300)
    assert sub is not None and sub.policy_out == "ROGUE"
    fixed = bng.add_subscriber(300, "100.64.1.2", "255.255.255.252", *PLAN, "svc-3")
    assert fixed.diff.splitlines() == [
        "+ no service-policy output ROGUE",
        "+ service-policy output PLAN-100M-OUT",
    ]


def test_device_refusals_are_typed(bng_inventory: Bng, lab_bng: LabBng) -> None:
    bng = CiscoBng(bng_inventory)
    with pytest.raises(SubscriberNotFound):
        bng.apply_walled_garden(999)
    bng.add_subscriber(400, "100.64.2.2", "255.255.255.252", *PLAN, "a")
    lab_bng.faults.update(error_replies={r"^ip address": "% Invalid input detected at '^' marker."})
    with pytest.raises(ConfigRejected):
        bng.add_subscriber(400, "100.64.2.6", "255.255.255.252", *PLAN, "a")


BAD_TEXT = ["x\nshutdown", "x;y", 'x"', "x'", "a b", "", "x" * 200]
BAD_VLANS: list[object] = [0, 1, 4095, -3, "100", 100.0, True, None, 10**12]
BAD_IPS = ["100.64.0.256", "100.64.0.1\nno ip", "1.2.3", "::1", "100.64.0.1;"]
BAD_MASKS = ["255.0.255.0", "255.255.255.252\n", "33", "x"]


def test_bad_input_raises_before_any_connection(bng_inventory: Bng, lab_bng: LabBng) -> None:
    bng = CiscoBng(bng_inventory)
    ok = ("100.64.0.2", "255.255.255.252", *PLAN, "svc")
    calls = []
    for vl in BAD_VLANS:
        calls += [
            lambda b=vl: bng.add_subscriber(b, *ok),
            lambda b=vl: bng.add_subscriber(100, *ok, inner_vlan=b if b is not None else 0),
            lambda b=vl: bng.apply_walled_garden(b),
            lambda b=vl: bng.restore_plan(b, *PLAN),
            lambda b=vl: bng.remove_subscriber(b),
            lambda b=vl: bng.get_subscriber(b),
        ]
    for ip in BAD_IPS:
        calls.append(lambda b=ip: bng.add_subscriber(100, b, "255.255.255.252", *PLAN, "d"))
    for mask in BAD_MASKS:
        calls.append(lambda b=mask: bng.add_subscriber(100, "100.64.0.2", b, *PLAN, "d"))
    for text in BAD_TEXT:
        calls += [
            lambda b=text: bng.add_subscriber(100, "100.64.0.2", "255.255.255.252", b, "O", "d"),
            lambda b=text: bng.add_subscriber(100, "100.64.0.2", "255.255.255.252", "I", b, "d"),
            lambda b=text: bng.add_subscriber(100, "100.64.0.2", "255.255.255.252", *PLAN, b),
            lambda b=text: bng.restore_plan(100, b, "O"),
            lambda b=text: bng.restore_plan(100, "I", b),
        ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    with pytest.raises(InvalidInput):
        CiscoBng(bng_inventory, walled_garden_policy="WG\nshutdown")
    assert lab_bng.counters.connections == 0
