"""The lab BNG's --More-- pager, configuration typed by hand and read back by the
driver, and a 20,000-subscriber BNG, all over real SSH with stock netmiko."""

from __future__ import annotations

import re

from netmiko import BaseConnection
from ntc_templates.parse import parse_output

from fiberflow.devices.bng import CiscoBng
from fiberflow.devices.inventory import Bng
from fiberflow.lab.devices import LabBng
from fiberflow.lab.ios_pager import MORE
from tests.lab.bng_session import PLAN, UPLINK, connect, provision

PROMPT = r"bng-1#\s*$"


def _until(conn: BaseConnection, pattern: str) -> str:
    return str(conn.read_until_pattern(pattern=pattern, read_timeout=10))


def _shown(chunk: str) -> list[str]:
    """Output lines of one screen, without the pager prompt and its erasure."""
    text = re.sub(r"\x08+ +\x08+", "", chunk).replace(MORE, "")
    return [line for line in text.splitlines() if line.strip()]


def test_output_pages_until_terminal_length_0(lab_bng: LabBng) -> None:
    conn = connect(lab_bng.port)  # netmiko has sent `terminal length 0`
    try:
        conn.enable()
        provision(conn)
        whole = conn.send_command("show running-config").splitlines()
        assert MORE.strip() not in "\n".join(whole) and len(whole) > 47 + 1
        conn.send_command("terminal length 24")  # what a vty starts with

        conn.write_channel("show running-config\n")
        first = _until(conn, MORE)
        assert _shown(first)[1:] == [x for x in whole[:23] if x.strip()]  # echo, 23 lines
        conn.write_channel("\r")  # Return: one more line
        assert _shown(_until(conn, MORE)) == [whole[23]]
        conn.write_channel(" ")  # space: the next screenful
        assert _shown(_until(conn, MORE)) == [x for x in whole[24:47] if x.strip()]
        conn.write_channel("q")  # q: the rest is dropped, the prompt is back
        _until(conn, PROMPT)
        tail = conn.send_command("show version | include uptime")
        assert tail.startswith("bng-1 uptime is") and MORE not in tail

        conn.write_channel("show running-config\n")
        _until(conn, MORE)
        pages = ""
        while True:  # space to the end: the prompt comes back after "end"
            conn.write_channel(" ")
            pages = _until(conn, rf"{re.escape(MORE)}|{PROMPT}")
            if re.search(PROMPT, pages):
                break
        assert _shown(pages)[-2:] == ["end", "bng-1#"]

        conn.send_command_timing("terminal length 0")
        assert conn.send_command("show running-config").splitlines() == whole
    finally:
        conn.disconnect()


def test_hand_typed_changes_are_read_back_by_the_driver(
    bng_inventory: Bng, lab_bng: LabBng
) -> None:
    driver = CiscoBng(bng_inventory)
    for vlan in (300, 301):
        driver.add_subscriber(vlan, f"100.64.1.{vlan - 298}", "255.255.255.252", *PLAN, "svc")
    conn = connect(lab_bng.port)
    try:
        conn.enable()
        out = conn.send_config_set(
            [
                # an engineer swaps a policy and shuts a subscriber...
                f"interface {UPLINK}.300",
                f"no service-policy output {PLAN[1]}",
                "service-policy output ROGUE",
                "shutdown",
                # ... adds one by hand, abbreviated as people type ...
                "int gi0/0/1.302",
                "desc by-hand",
                "encap dot1q 302 second-dot1q 9",
                "ip add 100.64.9.1 255.255.255.252",
                "serv in HAND-IN",
                # ... and removes another
                "exit",
                f"no interface {UPLINK}.301",
            ]
        )
        assert "%" not in out
        running = conn.send_command("show running-config")
        brief = parse_output(
            platform="cisco_ios",
            command="show ip interface brief",
            data=conn.send_command("show ip interface brief"),
        )
    finally:
        conn.disconnect()

    swapped = driver.get_subscriber(300)
    assert swapped is not None and (swapped.policy_in, swapped.policy_out) == (PLAN[0], "ROGUE")
    typed = driver.get_subscriber(302)
    assert typed is not None
    assert (typed.description, typed.vlan, typed.inner_vlan) == ("by-hand", 302, 9)
    assert (typed.ip_address, typed.policy_in, typed.policy_out) == ("100.64.9.1", "HAND-IN", None)
    assert driver.get_subscriber(301) is None

    assert f"interface {UPLINK}.301" not in running
    block = running[running.index(f"interface {UPLINK}.300") :].split("!")[0]
    assert " shutdown" in block and " service-policy output ROGUE" in block
    # IOS keeps a removed sub-interface listed as deleted until reload.
    assert {r["interface"]: r["status"] for r in brief} == {
        UPLINK: "up",
        f"{UPLINK}.300": "administratively down",
        f"{UPLINK}.301": "deleted",
        f"{UPLINK}.302": "up",
    }

    fixed = driver.add_subscriber(300, "100.64.1.2", "255.255.255.252", *PLAN, "svc")
    assert fixed.diff.splitlines() == [
        "+ no service-policy output ROGUE",
        f"+ service-policy output {PLAN[1]}",
    ]
    conn = connect(lab_bng.port)
    try:
        conn.enable()
        conn.send_config_set([f"interface {UPLINK}.300", "no shutdown"])
        assert " shutdown" not in conn.send_command(f"show running-config interface {UPLINK}.300")
    finally:
        conn.disconnect()


def test_20000_subscribers_render_in_full(lab_bng: LabBng) -> None:
    count = 20_000
    seeded = lab_bng.seed(
        [
            {
                "name": f"{UPLINK}.{n}",
                "description": f"svc-{n}",
                "outer_vlan": 100 + n // 4000,
                "inner_vlan": n % 4000 + 1,
                "ip_address": f"100.{64 + n // 65536}.{n // 256 % 256}.{n % 256}",
                "netmask": "255.255.255.252",
                "policy_in": PLAN[0],
                "policy_out": PLAN[1],
            }
            for n in range(count)
        ]
    )
    assert seeded == {"subinterfaces": count, "failures": []}
    conn = connect(lab_bng.port)
    try:
        conn.enable()
        running = conn.send_command("show running-config", read_timeout=120).splitlines()
        brief = conn.send_command("show ip interface brief", read_timeout=120).splitlines()
        clash = conn.send_config_set(
            [f"interface {UPLINK}.99999", "encapsulation dot1Q 104 second-dot1q 4000"]
        )
    finally:
        conn.disconnect()
    names = [line.split()[1] for line in running if line.startswith(f"interface {UPLINK}.")]
    assert names == [f"{UPLINK}.{n}" for n in range(count)]  # in IOS (numeric) order
    assert running[-1] == "end" and running.count("!") >= count
    assert len(brief) == count + 2 and brief[-1].split()[:2] == [
        f"{UPLINK}.{count - 1}",
        "100.64.78.31",
    ]
    assert f"already configured on {UPLINK}.19999" in clash
