"""The lab OLT's display commands through stock netmiko, parsed by ntc-templates into the
state a provisioning made; paging; configuration typed by hand, read back by the driver."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from netmiko import BaseConnection, ConnectHandler
from ntc_templates.parse import parse_output

from fiberflow.devices.inventory import Olt
from fiberflow.devices.olt import HuaweiOlt
from fiberflow.lab.devices import LabOlt
from fiberflow.lab.pager import MORE

ANY_PROMPT = r"[>#]\s*$"
# What provisioning leaves on the OLT: (pon port, serial, profile, vlan, description).
SERVICES = [
    ("0/1/0", "485754431A2B3C4D", 10, 101, "alice"),
    ("0/1/0", "485754431A2B3C4E", 20, 102, "bob"),
    ("0/1/15", "485754431A2B3C4F", 30, 103, "carol"),
    ("0/2/3", "485754431A2B3C50", 10, 104, "dave"),
]


def connect(device_type: str, port: int) -> BaseConnection:
    return ConnectHandler(
        device_type=device_type,
        host="127.0.0.1",
        port=port,
        username="lab",
        password="lab",
        use_keys=False,
        allow_agent=False,
    )


def parse(command: str, text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = parse_output(platform="huawei_smartax", command=command, data=text)
    return rows


@pytest.fixture
def olt_conn(lab_olt: LabOlt) -> Iterator[BaseConnection]:
    conn = connect("huawei_olt", lab_olt.port)
    conn.enable()
    yield conn
    conn.disconnect()


@pytest.fixture
def provisioned(olt_inventory: Olt, lab_olt: LabOlt) -> dict[str, Any]:
    """The services above provisioned by the driver, online; the lab's dump of them."""
    olt = HuaweiOlt(olt_inventory)
    for fsp, serial, profile, vlan, desc in SERVICES:
        added = olt.add_ont(fsp, None, serial, profile, profile, desc)
        olt.add_service_port(fsp, int(str(added.detail["ont_id"])), 1, vlan)
    time.sleep(lab_olt.state.online_delay * 2)
    dump: dict[str, Any] = lab_olt.state.dump()
    assert all(o["online"] for o in dump["onts"])
    return dump


def _fsp(text: str) -> str:
    return text.replace(" ", "")


def test_display_version(olt_conn: BaseConnection) -> None:
    rows = parse("display version", olt_conn.send_command("display version"))
    assert [r["mainboard_type"] for r in rows] == ["Active", "Standby"]
    assert rows[0]["product"] == "MA5800-X7" and rows[0]["olt_version"].startswith("MA5800")
    assert rows[0]["current_program_area"] == "Area A"


def test_display_board(olt_conn: BaseConnection, lab_olt: LabOlt) -> None:
    rows = parse("display board 0", olt_conn.send_command("display board 0"))
    gpon = {int(r["slot_id"]) for r in rows if r["boardname"] == "H901GPHF"}
    assert gpon == {s for _, s in lab_olt.state.boards}
    assert all(r["status"] == "Normal" for r in rows if r["boardname"] == "H901GPHF")
    assert {r["status"] for r in rows if r["boardname"] == "H901MPLA"} == {
        "Active_normal",
        "Standby_normal",
    }


def test_display_ont_info_of_the_frame(
    olt_conn: BaseConnection, provisioned: dict[str, Any]
) -> None:
    text = olt_conn.send_command("display ont info 0 all")
    rows = parse("display ont info 0 all", text)
    seen = {(_fsp(r["fsp"]), int(r["ont_id"]), r["serial_number"], r["description"],
             r["run_state"]) for r in rows}  # fmt: skip
    made = {(o["fsp"], o["ont_id"], o["serial"], o["description"], "online")
            for o in provisioned["onts"]}  # fmt: skip
    assert seen == made
    assert text.count("In port") == 3  # one table per port that has ONTs


def test_display_ont_info_of_one_ont(olt_conn: BaseConnection, provisioned: dict[str, Any]) -> None:
    ont = provisioned["onts"][2]
    f, s, p = ont["fsp"].split("/")
    command = f"display ont info {f} {s} {p} {ont['ont_id']}"
    (row,) = parse(command, olt_conn.send_command(command))
    assert (row["fsp"], int(row["ont_id"]), row["description"]) == (
        ont["fsp"], ont["ont_id"], ont["description"],
    )  # fmt: skip
    assert row["serial_number"].split()[0] == ont["serial"]
    assert (row["run_state"], row["control_flag"]) == ("online", "active")
    assert int(row["line_profile_id"]) == ont["line_profile_id"]


def test_display_service_port_all(olt_conn: BaseConnection, provisioned: dict[str, Any]) -> None:
    rows = parse("display service-port all", olt_conn.send_command("display service-port all"))
    seen = {(int(r["index"]), int(r["vlan_id"]), _fsp(r["fsp"]), int(r["ont_id"]),
             int(r["gem_index"]), r["state"]) for r in rows}  # fmt: skip
    made = {(sp["index"], sp["vlan"], sp["fsp"], sp["ont_id"], sp["gem_port"], "up")
            for sp in provisioned["service_ports"]}  # fmt: skip
    assert seen == made


def test_current_configuration_replays_to_the_same_state(
    olt_conn: BaseConnection, lab_olt: LabOlt, provisioned: dict[str, Any]
) -> None:
    lab_olt.state.set_active((0, 2, 3, 0), False)
    before = _config_of(lab_olt.state.dump())
    text = olt_conn.send_command("display current-configuration")
    assert text.splitlines()[0].startswith("[MA5800") and text.rstrip().endswith("return")
    for o in provisioned["onts"]:
        assert f'sn-auth "{o["serial"]}"' in text and f'desc "{o["description"]}"' in text
    # Typed back into an empty OLT, the configuration lines make the same state.
    lab_olt.state.reset()
    lines = [ln.strip() for ln in text.splitlines()]
    olt_conn.config_mode()
    for line in lines:
        if line.startswith(("interface gpon", "port ", "ont ", "service-port ")):
            out = olt_conn.send_command(line, expect_string=ANY_PROMPT)
            assert "Failure" not in out and "%" not in out, (line, out)
        elif line == "#" and "(config-if-" in olt_conn.find_prompt():
            olt_conn.send_command("quit", expect_string=ANY_PROMPT)  # leave interface mode
    olt_conn.exit_config_mode()
    assert _config_of(lab_olt.state.dump()) == before


def _config_of(dump: dict[str, Any]) -> dict[str, Any]:
    return {"onts": [{k: v for k, v in o.items() if k != "online"} for o in dump["onts"]],
            "service_ports": dump["service_ports"]}  # fmt: skip


def test_paging_until_screen_length_0(lab_olt: LabOlt, provisioned: dict[str, Any]) -> None:
    # A terminal_server session does no preparation: paging stays as the device starts.
    conn = connect("terminal_server", lab_olt.port)
    try:
        conn.read_until_pattern(r"olt-1>")
        conn.write_channel("display current-configuration\n")
        first = conn.read_until_pattern(re.escape(MORE))
        page = first.split("display current-configuration", 1)[1].strip("\r\n").splitlines()
        assert len(page) == 24 + 1 and page[0].startswith("[MA5800")  # 24 lines, then More
        conn.write_channel(" ")  # space: the next page
        second = conn.read_until_pattern(re.escape(MORE))
        # The More prompt is wiped (cursor left, blanks) before the page goes on.
        assert second.startswith("\x1b[") and len(second.splitlines()) == 24 + 1
        conn.write_channel("\r")  # Enter: one line more
        third = conn.read_until_pattern(re.escape(MORE))
        assert len(third.splitlines()) == 1 + 1
        conn.write_channel("q")  # q: back to the prompt, the rest unseen
        rest = conn.read_until_pattern(r"olt-1>")
        assert "return" not in rest and MORE not in rest
        conn.write_channel("screen-length 0 temporary\n")
        conn.read_until_pattern(r"olt-1>")
        conn.write_channel("display current-configuration\n")
        whole = conn.read_until_pattern(r"\nreturn\r?\n[\s\S]*olt-1>")
        assert MORE not in whole and "bbs-config" in whole
    finally:
        conn.disconnect()


def test_stock_netmiko_turns_paging_off(
    olt_conn: BaseConnection, provisioned: dict[str, Any]
) -> None:
    # netmiko's huawei_olt sends `scroll` while preparing the session.
    text = olt_conn.send_command("display current-configuration")
    assert MORE not in text and text.rstrip().endswith("return")


def test_hand_typed_configuration_is_read_back_by_the_driver(
    olt_conn: BaseConnection, olt_inventory: Olt
) -> None:
    olt = HuaweiOlt(olt_inventory)
    sn = "485754431A2B3C4D"
    olt_conn.config_mode()
    olt_conn.send_command("interface gpon 0/1", expect_string=ANY_PROMPT)
    typed = (
        f"ont add 5 7 sn-auth {sn.lower()} omci ont-lineprofile-id 20 ont-srvprofile-id 20 "
        'desc "by-hand"'
    )
    assert "success: 1" in olt_conn.send_command(typed, expect_string=ANY_PROMPT)
    too_high = typed.replace("5 7", "5 128").replace(sn.lower(), "485754431A2B3C99")
    assert "% Parameter error" in olt_conn.send_command(too_high, expect_string=ANY_PROMPT)
    olt_conn.send_command("quit", expect_string=ANY_PROMPT)
    olt_conn.send_command(
        "service-port 300 vlan 444 gpon 0/1/5 ont 7 gemport 1 multi-service user-vlan 444 "
        "tag-transform translate",
        expect_string=ANY_PROMPT,
    )
    ont = olt.get_ont("0/1/5", 7)
    assert ont is not None and (ont.serial, ont.description, ont.line_profile_id) == (
        sn, "by-hand", 20,
    )  # fmt: skip
    assert [(sp.index, sp.vlan) for sp in olt.list_service_ports("0/1/5", 7)] == [(300, 444)]

    olt_conn.send_command("interface gpon 0/1", expect_string=ANY_PROMPT)
    assert "Failure: This configured object has some service virtual ports" in (
        olt_conn.send_command("ont delete 5 7", expect_string=ANY_PROMPT)
    )
    olt_conn.send_command("quit", expect_string=ANY_PROMPT)
    assert olt_conn.send_command("undo service-port 300", expect_string=ANY_PROMPT).strip() == ""
    assert olt.list_service_ports("0/1/5", 7) == []
    assert "Failure: The service virtual port does not exist" in olt_conn.send_command(
        "undo service-port 300", expect_string=ANY_PROMPT
    )
    olt_conn.send_command("interface gpon 0/1", expect_string=ANY_PROMPT)
    assert "success: 1" in olt_conn.send_command("ont delete 5 7", expect_string=ANY_PROMPT)
    assert "Failure: The required ONT does not exist" in olt_conn.send_command(
        "ont delete 5 7", expect_string=ANY_PROMPT
    )
    assert olt.get_ont("0/1/5", 7) is None and olt.find_ont_by_serial(sn) is None
