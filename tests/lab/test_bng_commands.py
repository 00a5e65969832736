"""The lab BNG's show commands through stock netmiko, parsed by their ntc-templates,
from a provisioning-like state (tests/lab/bng_session.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from netmiko import BaseConnection
from ntc_templates.parse import parse_output

from fiberflow.devices.bng.parsing import parse_running_interfaces
from fiberflow.lab.devices import LabBng
from tests.lab.bng_session import PLAN, SUBS, UPLINK, connect, provision


@pytest.fixture
def bng(lab_bng: LabBng) -> Iterator[BaseConnection]:
    conn = connect(lab_bng.port)
    conn.enable()
    provision(conn)
    yield conn
    conn.disconnect()


def test_show_version(bng: BaseConnection) -> None:
    (row,) = parse_output(
        platform="cisco_ios", command="show version", data=bng.send_command("show version")
    )
    assert row["hostname"] == "bng-1"
    assert row["hardware"] == ["ASR1002-HX"]
    assert row["version"] == "16.12.5"
    assert row["software_image"] == "X86_64_LINUX_IOSD-UNIVERSALK9-M"
    assert row["uptime_minutes"].isdigit() and row["config_register"] == "0x2102"
    assert row["serial"] and row["serial"][0].isalnum()


def test_show_running_config(bng: BaseConnection, lab_bng: LabBng) -> None:
    text = bng.send_command("show running-config")
    lines = text.splitlines()
    assert lines[:2] == ["Building configuration...", ""]
    header = re.fullmatch(r"Current configuration : (\d+) bytes", lines[2])
    assert header is not None
    size = int(header[1])
    assert size == sum(len(line) + 1 for line in lines[3:])
    assert lines[-1] == "end" and "hostname bng-1" in lines
    assert [i for i, line in enumerate(lines) if line.startswith("interface")] == [
        lines.index(f"interface {UPLINK}"),
        *(lines.index(f"interface {UPLINK}.{v}") for v in SUBS),
    ]
    # Every block is closed by "!": the interface blocks alone parse with the template
    # of `show running-config interface`, into what was configured.
    first = lines.index(f"interface {UPLINK}")
    blocks = "\n".join(lines[first : lines.index("ip forward-protocol nd")])
    rows = parse_output(platform="cisco_ios", command="show running-config interface", data=blocks)
    assert [r["interface"] for r in rows] == [UPLINK, *(f"{UPLINK}.{v}" for v in SUBS)]
    assert rows[0]["description"] == "core-uplink"
    for row, (vlan, (inner, ip, desc, _)) in zip(rows[1:], SUBS.items(), strict=True):
        assert (row["outer_vlan"], row["inner_vlan"]) == (str(vlan), str(inner or ""))
        assert (row["ip_address"], row["netmask"], row["description"]) == (
            ip,
            "255.255.255.252",
            desc,
        )
        assert (row["input_policy"], row["output_policy"]) == PLAN
    shut = lines.index(f"interface {UPLINK}.102")
    assert " shutdown" in lines[shut : lines.index("!", shut)]
    assert len(lab_bng.state.dump()["subinterfaces"]) == len(SUBS)


def test_show_running_config_interface(bng: BaseConnection) -> None:
    text = bng.send_command(f"show running-config interface {UPLINK}.101")
    assert text.startswith("Building configuration...") and text.rstrip().endswith("end")
    # IOS ends this command with "end"; the template, written from "!"-closed blocks,
    # stops at it, so parse what precedes it (devices/bng/parsing.py does the same).
    (row,) = parse_output(
        platform="cisco_ios",
        command=f"show running-config interface {UPLINK}.101",
        data=re.sub(r"^end\s*\Z", "!\n", text.rstrip(), flags=re.M),
    )
    assert (row["outer_vlan"], row["inner_vlan"], row["ip_address"]) == ("101", "7", "100.64.0.6")
    (sub,) = parse_running_interfaces(text)
    assert (sub.vlan, sub.inner_vlan, sub.policy_in, sub.policy_out) == (101, 7, *PLAN)
    missing = bng.send_command(f"show running-config interface {UPLINK}.9")
    assert "% Invalid input detected at '^' marker." in missing


def test_show_ip_interface_brief(bng: BaseConnection) -> None:
    rows = parse_output(
        platform="cisco_ios",
        command="show ip interface brief",
        data=bng.send_command("show ip interface brief"),
    )
    assert [(r["interface"], r["ip_address"], r["status"], r["proto"]) for r in rows] == [
        (UPLINK, "unassigned", "up", "up"),
        (f"{UPLINK}.100", "100.64.0.2", "up", "up"),
        (f"{UPLINK}.101", "100.64.0.6", "up", "up"),
        (f"{UPLINK}.102", "100.64.0.10", "administratively down", "down"),
    ]


def test_show_interfaces_description(bng: BaseConnection) -> None:
    rows = parse_output(
        platform="cisco_ios",
        command="show interfaces description",
        data=bng.send_command("show interfaces description"),
    )
    assert [(r["port"], r["status"], r["protocol"], r["description"]) for r in rows] == [
        ("Gi0/0/1", "up", "up", "core-uplink"),
        ("Gi0/0/1.100", "up", "up", "svc-100"),
        ("Gi0/0/1.101", "up", "up", "svc-101"),
        ("Gi0/0/1.102", "admin down", "down", "svc-102"),
    ]


def test_include_filter(bng: BaseConnection) -> None:
    out = bng.send_command("show running-config | include ^interface|service-policy input")
    assert out.splitlines() == [
        f"interface {UPLINK}",
        *[x for v in SUBS for x in (f"interface {UPLINK}.{v}", f" service-policy input {PLAN[0]}")],
    ]
    # Abbreviated, on another command: the uptime line only.
    (line,) = bng.send_command("sh ver | i uptime is").splitlines()
    assert line.startswith("bng-1 uptime is ")


def test_exclude_filter(bng: BaseConnection) -> None:
    out = bng.send_command("show ip interface brief | exclude unassigned|Interface")
    assert [line.split()[0] for line in out.splitlines()] == [f"{UPLINK}.{v}" for v in SUBS]


def test_begin_filter(bng: BaseConnection) -> None:
    out = bng.send_command(f"show running-config | begin {re.escape(UPLINK)}\\.102")
    lines = out.splitlines()
    assert lines[0] == f"interface {UPLINK}.102" and lines[-1] == "end"
    assert not any(".100" in line or ".101" in line for line in lines)


def test_section_filter(bng: BaseConnection) -> None:
    out = bng.send_command(f"show running-config | section ^interface {re.escape(UPLINK)}\\.10[01]")
    text = bng.send_command(f"show running-config interface {UPLINK}.100")
    block_100 = text.splitlines()[4:-1]  # between the "!" and "end"
    assert out.splitlines()[: len(block_100)] == block_100
    assert [line for line in out.splitlines() if not line.startswith(" ")] == [
        f"interface {UPLINK}.100",
        f"interface {UPLINK}.101",
    ]
    # A matching child line comes out alone, without its parent.
    assert bng.send_command("show running-config | section second-dot1q").splitlines() == [
        " encapsulation dot1Q 101 second-dot1q 7"
    ]


def test_bad_filters_and_unknown_commands_get_the_caret(bng: BaseConnection) -> None:
    prompt = "bng-1#"
    for command, word in [
        ("show running-config | frobnicate x", "frobnicate"),
        ("show interfaces frobnicate", "frobnicate"),
        ("show version extra", "extra"),
        ("frobnicate now", "frobnicate"),
    ]:
        out = bng.send_command(command, strip_command=False)
        echo, caret, error = out.splitlines()[:3]
        assert error == "% Invalid input detected at '^' marker."
        assert caret.index("^") == len(prompt) + command.index(word), command
    assert "% Incomplete command." in bng.send_command("show running-config | include")
    user = connect(bng.port)  # user EXEC: the running configuration is privileged
    try:
        assert "% Invalid input" in user.send_command("show running-config")
        assert "bng-1 uptime" in user.send_command("show version | include uptime")
    finally:
        user.disconnect()
