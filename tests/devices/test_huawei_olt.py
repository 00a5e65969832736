"""HuaweiOlt over real SSH against the lab OLT, and its parsers on real captures."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fiberflow.devices.base import CommandRecord, InvalidInput
from fiberflow.devices.inventory import Olt
from fiberflow.devices.olt import (
    HuaweiOlt,
    OltCommandFailed,
    OntIdInUse,
    OntNotFound,
    OntSerialExists,
    ServicePortIndexConflict,
)
from fiberflow.devices.olt.errors import raise_for_failure
from fiberflow.devices.olt.parsing import (
    parse_ont_add,
    parse_ont_detail,
    parse_ont_summary,
    parse_service_ports,
)
from fiberflow.lab.devices import LabOlt

CAPTURES = Path(__file__).parent / "captures" / "huawei_smartax"
SN1 = "485754431A2B3C4D"
SN2 = "485754439988776F"


def capture(name: str) -> str:
    return (CAPTURES / name).read_text()


def wait_online(olt: HuaweiOlt, fsp: str, ont_id: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = olt.get_ont(fsp, ont_id)
        if info is not None and info.online:
            return True
        time.sleep(0.1)
    return False


# --- parsers on real captures ------------------------------------------------------------


def test_parse_ont_detail_captures() -> None:
    info = parse_ont_detail(capture("display_ont_info_0_1_2_3--display_ont_info_2.raw"))
    assert info is not None
    assert (info.fsp, info.ont_id, info.serial) == ("0/1/1", 131, "123456789123AB12AB")
    assert (info.control_flag, info.run_state, info.match_state) == ("active", "online", "match")
    assert (info.line_profile_id, info.service_profile_id, info.description) == (100, 100, "ABCD")
    other = parse_ont_detail(capture("display_ont_info_0_1_2_3--display_ont_info_1.raw"))
    assert other is not None and other.fsp == "0/0/6" and other.line_profile_id == 500


def test_parse_summary_service_ports_and_add_captures() -> None:
    onts = parse_ont_summary(capture("display_ont_info_0_1_2--display_ont_info_fsp.raw"))
    assert len(onts) == 31 and onts[30].ont_id == 30 and onts[0].fsp == "0/1/0"
    assert onts[0].description == "Generic_description"
    sps = parse_service_ports(capture("display_service-port_all--display_service-port_all.raw"))
    assert [(s.index, s.vlan, s.fsp, s.ont_id, s.gem_port, s.state) for s in sps] == [
        (5827, 2, "0/1/0", 0, 1, "up")
    ]
    assert parse_ont_add(capture("ont_add--ont_add.raw")) == (1, 2)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("  Failure: SN already exists", OntSerialExists),
        ("  Failure: The ONT ID has already existed", OntIdInUse),
        ("  Failure: Conflicted service virtual port index", ServicePortIndexConflict),
        ("  Failure: The required ONT does not exist", OntNotFound),
        ("  Failure: System is busy", OltCommandFailed),
        ("  % Unknown command, the error locates at '^'", OltCommandFailed),
    ],
)
def test_failure_lines_map_to_typed_errors(line: str, kind: type[Exception]) -> None:
    with pytest.raises(kind) as info:
        raise_for_failure("olt-x", "cmd", f"some output\n{line}\n")
    assert type(info.value) is kind
    raise_for_failure("olt-x", "cmd", "  Memory occupation : 23%\n")  # not a failure


# --- every operation over SSH --------------------------------------------------------------


def test_ont_lifecycle(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    records: list[CommandRecord] = []
    olt = HuaweiOlt(olt_inventory, audit=records.append)
    assert olt.find_free_ont_id("0/1/3") == 0

    added = olt.add_ont("0/1/3", None, SN1, 10, 20, "cust-1")
    assert added.changed and added.detail == {"fsp": "0/1/3", "ont_id": 0}
    assert not olt.add_ont("0/1/3", None, SN1, 10, 20, "cust-1").changed

    assert wait_online(olt, "0/1/3", 0)
    info = olt.get_ont("0/1/3", 0)
    assert info is not None
    assert (info.serial, info.description, info.line_profile_id, info.service_profile_id) == (
        SN1,
        "cust-1",
        10,
        20,
    )
    assert (info.control_flag, info.config_state, info.match_state) == ("active", "normal", "match")
    found = olt.find_ont_by_serial(SN1)
    assert found is not None and (found.fsp, found.ont_id) == ("0/1/3", 0)
    assert olt.find_ont_by_serial(SN2) is None
    assert olt.get_ont("0/1/3", 5) is None

    sp = olt.add_service_port("0/1/3", 0, gem_port=1, vlan=100)
    assert sp.changed and sp.detail["index"] == 0
    again = olt.add_service_port("0/1/3", 0, gem_port=1, vlan=100)
    assert not again.changed and again.detail["index"] == 0
    ports = olt.list_service_ports("0/1/3", 0)
    assert [(p.index, p.vlan, p.gem_port, p.user_vlan, p.state) for p in ports] == [
        (0, 100, 1, 100, "up")
    ]
    assert olt.list_service_ports("0/1/3", 9) == []

    assert olt.deactivate_ont("0/1/3", 0).changed
    assert not olt.deactivate_ont("0/1/3", 0).changed
    off = olt.get_ont("0/1/3", 0)
    assert off is not None and off.control_flag == "deactivated" and not off.online
    assert olt.activate_ont("0/1/3", 0).changed
    assert wait_online(olt, "0/1/3", 0)

    deleted = olt.delete_ont("0/1/3", 0)
    assert deleted.changed and "undo service-port 0" in deleted.diff
    assert not olt.delete_ont("0/1/3", 0).changed
    assert olt.get_ont("0/1/3", 0) is None
    assert lab_olt.state.dump() == {"onts": [], "service_ports": []}

    assert records and all(r.device == "olt-1" for r in records)
    assert any(r.command.startswith("ont add 3 0 sn-auth") and r.ok for r in records)
    assert not any("lab" in r.command.split() for r in records)  # no password in the trail


def test_add_conflicts_are_typed(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    olt = HuaweiOlt(olt_inventory)
    olt.add_ont("0/2/15", 4, SN1, 10, 10, "a")
    with pytest.raises(OntIdInUse):
        olt.add_ont("0/2/15", 4, SN2, 10, 10, "b")
    with pytest.raises(OntSerialExists):
        olt.add_ont("0/1/0", None, SN1, 10, 10, "c")
    olt.add_service_port("0/2/15", 4, 1, 200, index=7)
    olt.add_ont("0/2/15", 5, SN2, 10, 10, "b")
    with pytest.raises(ServicePortIndexConflict):
        olt.add_service_port("0/2/15", 5, 1, 201, index=7)
    with pytest.raises(OntNotFound):
        olt.activate_ont("0/2/15", 6)
    assert olt.remove_service_port(7).changed
    assert not olt.remove_service_port(7).changed
    assert [o["ont_id"] for o in lab_olt.state.dump()["onts"]] == [4, 5]


def test_device_side_duplicate_serial_is_typed(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    """The OLT's own refusal (a serial added behind the driver's back) maps too."""
    olt = HuaweiOlt(olt_inventory)
    olt.add_ont("0/1/1", 0, SN1, 10, 10, "a")
    # A hidden error reply makes the driver's pre-check miss the serial, so the
    # device's `Failure: SN already exists` is what the driver sees.
    lab_olt.faults.update(
        error_replies={r"^display ont info by-sn": "  Failure: The required ONT does not exist"}
    )
    with pytest.raises(OntSerialExists):
        olt.add_ont("0/1/2", 0, SN1, 10, 10, "b")


# --- bad input never reaches the device ----------------------------------------------------

BAD_STRINGS = ["0/1/3\nreboot", "0/1/3;", '0/1/3"', "99/99/999", "0/1/3" * 100, "", "0/9/0"]
BAD_SERIALS = ["485754431A2B3C4D\n", "4857;4431A2B3C4D", 'ABC"', "48575443", "G" * 16, "a" * 500]
BAD_INTS: list[object] = [-1, 128, 10**9, "3", 3.0, True, None]
BAD_DESCRIPTIONS = ['x" ; reboot', "a\nb", "a;b", "x" * 65, "", "quote'"]


def _calls(olt: HuaweiOlt) -> list[tuple[str, object]]:
    good = {"fsp": "0/1/3", "ont_id": 1, "serial": SN1}
    calls: list[tuple[str, object]] = []
    for bad in BAD_STRINGS:
        calls += [
            ("add_ont fsp", lambda b=bad: olt.add_ont(b, 1, SN1, 10, 10, "d")),
            ("add_service_port fsp", lambda b=bad: olt.add_service_port(b, 1, 1, 100)),
            ("activate fsp", lambda b=bad: olt.activate_ont(b, 1)),
            ("deactivate fsp", lambda b=bad: olt.deactivate_ont(b, 1)),
            ("delete fsp", lambda b=bad: olt.delete_ont(b, 1)),
            ("get fsp", lambda b=bad: olt.get_ont(b, 1)),
            ("list fsp", lambda b=bad: olt.list_service_ports(b, 1)),
            ("free fsp", lambda b=bad: olt.find_free_ont_id(b)),
        ]
    for bad in BAD_SERIALS:
        calls += [
            ("add_ont serial", lambda b=bad: olt.add_ont("0/1/3", 1, b, 10, 10, "d")),
            ("find serial", lambda b=bad: olt.find_ont_by_serial(b)),
        ]
    for bad in BAD_INTS:
        calls += [
            (
                "add_ont id",
                lambda b=bad: olt.add_ont("0/1/3", 128 if b is None else b, SN1, 10, 10, "d"),
            ),
            (
                "add_ont line",
                lambda b=bad: olt.add_ont("0/1/3", 1, SN1, b if b != 128 else -5, 10, "d"),
            ),
            (
                "add_ont srv",
                lambda b=bad: olt.add_ont("0/1/3", 1, SN1, 10, b if b != 128 else 9999, "d"),
            ),
            ("sp ont", lambda b=bad: olt.add_service_port("0/1/3", b, 1, 100)),
            (
                "sp gem",
                lambda b=bad: olt.add_service_port("0/1/3", 1, b if b != 128 else 1024, 100),
            ),
            ("sp vlan", lambda b=bad: olt.add_service_port("0/1/3", 1, 1, b if b != 128 else 4095)),
            (
                "sp index",
                lambda b=bad: olt.add_service_port(
                    "0/1/3", 1, 1, 100, 70000 if b in (None, 128) else b
                ),
            ),
            ("remove index", lambda b=bad: olt.remove_service_port(b if b != 128 else 65536)),
            ("activate id", lambda b=bad: olt.activate_ont("0/1/3", b)),
            ("deactivate id", lambda b=bad: olt.deactivate_ont("0/1/3", b)),
            ("delete id", lambda b=bad: olt.delete_ont("0/1/3", b)),
            ("get id", lambda b=bad: olt.get_ont("0/1/3", b)),
            ("list id", lambda b=bad: olt.list_service_ports("0/1/3", b)),
        ]
    for bad in BAD_DESCRIPTIONS:
        calls.append(("add_ont desc", lambda b=bad: olt.add_ont("0/1/3", 1, SN1, 10, 10, b)))
    assert good  # the valid values above are the ones each call keeps
    return calls


def test_bad_input_raises_before_any_connection(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    olt = HuaweiOlt(olt_inventory)
    calls = _calls(olt)
    assert len(calls) > 100
    for label, call in calls:
        with pytest.raises(InvalidInput):
            call()  # type: ignore[operator]
        assert lab_olt.counters.connections == 0, label


def test_sessions_per_device_are_capped(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    """Inventory max_sessions bounds concurrent SSH sessions from this process."""
    lab_olt.faults.update(latency=0.3, latency_match=r"^display ont info")
    olt = HuaweiOlt(olt_inventory.model_copy(update={"max_sessions": 1, "timeout": 20.0}))
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: olt.get_ont("0/1/0", i), range(3)))
    assert results == [None, None, None]
    assert lab_olt.counters.connections == 3 and lab_olt.counters.peak_open == 1
