"""Plugged ONTs: autofind, receive power, unplugging; the admin ops and
`fiberflow lab ont plug/unplug` against a running lab, bad input included."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netmiko import BaseConnection, ConnectHandler
from ntc_templates.parse import parse_output

from fiberflow.devices.inventory import Olt
from fiberflow.devices.olt import HuaweiOlt
from fiberflow.lab.admin import LabAdminError, admin_call
from fiberflow.lab.devices import LabOlt
from fiberflow.lab.harness import FIBERFLOW, stack_env

SN_A, SN_B = "485754431A2B3C4D", "48575443DEADBEEF"
ANY_PROMPT = r"[>#]\s*$"


@pytest.fixture
def olt_conn(lab_olt: LabOlt) -> Iterator[BaseConnection]:
    conn = ConnectHandler(device_type="huawei_olt", host="127.0.0.1", port=lab_olt.port,
                          username="lab", password="lab", use_keys=False)  # fmt: skip
    conn.enable()
    yield conn
    conn.disconnect()


def autofind(conn: BaseConnection) -> list[tuple[str, str]]:
    text = conn.send_command("display ont autofind all")
    if "Failure: The automatically found ONTs do not exist" in text:
        return []
    rows = parse_output(platform="huawei_smartax", command="display ont autofind all", data=text)
    return [(r["fsp"], r["serial_number"].split()[0]) for r in rows]


def optical(conn: BaseConnection, slot: str, command: str) -> str:
    conn.config_mode()
    conn.send_command(f"interface gpon {slot}", expect_string=ANY_PROMPT)
    out = conn.send_command(command, expect_string=ANY_PROMPT)
    conn.send_command("quit", expect_string=ANY_PROMPT)
    conn.exit_config_mode()
    return str(out)


def test_plugged_onts_are_found_until_registered(
    olt_conn: BaseConnection, olt_inventory: Olt, lab_olt: LabOlt
) -> None:
    admin_call(lab_olt.port, "plug", fsp="0/1/3", serial=SN_A, rx_power_dbm=-19.5)
    admin_call(lab_olt.port, "plug", fsp="0/2/0", serial=SN_B.lower())
    assert autofind(olt_conn) == [("0/1/3", SN_A), ("0/2/0", SN_B)]

    olt = HuaweiOlt(olt_inventory)
    olt.add_ont("0/1/3", 4, SN_A, 10, 10, "found")
    olt.add_ont("0/2/0", 0, SN_B, 10, 10, "found-too")
    assert autofind(olt_conn) == []
    time.sleep(lab_olt.state.online_delay * 2)
    detail = optical(olt_conn, "0/1", "display ont optical-info 3 4")
    assert "Rx optical power(dBm)                  : -19.50" in detail
    table = optical(olt_conn, "0/1", "display ont optical-info 3 all")
    rows = parse_output(platform="huawei_smartax", command="display ont optical-info 3 all",
                        data=table)  # fmt: skip
    assert [(r["ont_id"], r["rx_power"]) for r in rows] == [("4", "-19.50")]
    # Without a power given: a healthy one, the same every time it is read.
    default = [optical(olt_conn, "0/2", "display ont optical-info 0 0") for _ in range(2)]
    (rx,) = {line.split(":")[1].strip() for d in default for line in d.splitlines()
             if line.strip().startswith("Rx optical power")}  # fmt: skip
    assert -22.0 <= float(rx) <= -18.0
    assert "Failure: The ONT does not exist" in optical(
        olt_conn, "0/2", "display ont optical-info 0 9"
    )


def test_unplugged_ont_leaves_autofind_and_goes_offline(
    olt_conn: BaseConnection, olt_inventory: Olt, lab_olt: LabOlt
) -> None:
    olt = HuaweiOlt(olt_inventory)
    olt.add_ont("0/1/0", 0, SN_A, 10, 10, "registered")  # never plugged: counts as connected
    admin_call(lab_olt.port, "plug", fsp="0/1/1", serial=SN_B)
    time.sleep(lab_olt.state.online_delay * 2)
    assert olt.get_ont("0/1/0", 0).run_state == "online"  # type: ignore[union-attr]

    assert admin_call(lab_olt.port, "unplug", serial=SN_A)["unplugged"] is True
    assert admin_call(lab_olt.port, "unplug", serial=SN_B)["unplugged"] is True
    assert autofind(olt_conn) == []
    assert olt.get_ont("0/1/0", 0).run_state == "offline"  # type: ignore[union-attr]
    assert "Failure: The ONT is not online" in optical(
        olt_conn, "0/1", "display ont optical-info 0 0"
    )
    # Plugged into another port, the registered ONT stays dark and is found there.
    admin_call(lab_olt.port, "plug", fsp="0/1/2", serial=SN_A)
    assert autofind(olt_conn) == [("0/1/2", SN_A)]
    admin_call(lab_olt.port, "plug", fsp="0/1/0", serial=SN_A)
    time.sleep(lab_olt.state.online_delay * 2)
    assert autofind(olt_conn) == []
    assert olt.get_ont("0/1/0", 0).run_state == "online"  # type: ignore[union-attr]
    assert admin_call(lab_olt.port, "unplug", serial="4857544300000009")["unplugged"] is False


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"fsp": "0/3/0", "serial": SN_A}, "no PON port 0/3/0"),
        ({"fsp": "0/1/16", "serial": SN_A}, "no PON port 0/1/16"),
        ({"fsp": "0/1", "serial": SN_A}, "0/1"),
        ({"fsp": "0/1/0", "serial": "HWTC1A2B3C4D"}, "16 hex digits"),
        ({"fsp": "0/1/0", "serial": SN_A, "rx_power_dbm": 3.0}, "rx power"),
        ({"fsp": "0/1/0", "serial": SN_A, "rx_power_dbm": -55}, "rx power"),
    ],
)
def test_plug_admin_refuses_bad_input(lab_olt: LabOlt, args: dict[str, Any], named: str) -> None:
    with pytest.raises(LabAdminError, match=named):
        admin_call(lab_olt.port, "plug", **args)
    assert admin_call(lab_olt.port, "plugs") == {"plugs": []}


# --- `fiberflow lab ont plug|unplug`: joins a running lab through its lab.json -----------


def write_lab_file(data_dir: Path, olt: LabOlt, pid: int | None = None) -> None:
    """The ready file a running lab writes (lab.runner.RunningLab.describe's shape)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "pid": os.getpid() if pid is None else pid,
        "devices": [{"name": olt.name, "kind": "olt", "platform": "huawei_olt",
                     "host": "127.0.0.1", "port": olt.port, "transport": "tcp"}],
        "admin": {"protocol": "ssh", "username": "admin", "password": "lab",
                  "devices": {olt.name: {"host": "127.0.0.1", "port": olt.port}}},
    }  # fmt: skip
    (data_dir / "lab.json").write_text(json.dumps(doc))


def lab_ont(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FIBERFLOW, "lab", "ont", *args, "--data-dir", str(data_dir)],
        env=stack_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_plugs_and_unplugs(tmp_path: Path, lab_olt: LabOlt, olt_conn: BaseConnection) -> None:
    write_lab_file(tmp_path, lab_olt)
    done = lab_ont(tmp_path, "plug", "--olt", "olt-1", "--pon-port", "0/2/7",
                   "--serial", SN_A, "--rx-power", "-24.5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "plugged into olt-1 0/2/7" in done.stdout
    assert autofind(olt_conn) == [("0/2/7", SN_A)]
    assert lab_olt.state.plugged()[0]["rx_power_dbm"] == -24.5
    done = lab_ont(tmp_path, "unplug", "--serial", SN_A)
    assert done.returncode == 0, done.stderr
    assert autofind(olt_conn) == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--olt", "olt-9", "--pon-port", "0/1/0", "--serial", SN_A], "--olt"),
        (["--olt", "olt-1", "--pon-port", "0/1", "--serial", SN_A], "--pon-port"),
        (["--olt", "olt-1", "--pon-port", "0/3/0", "--serial", SN_A], "no PON port 0/3/0"),
        (["--olt", "olt-1", "--pon-port", "0/1/0", "--serial", "4857544"], "--serial"),
        (["--olt", "olt-1", "--pon-port", "0/1/0", "--serial", SN_A, "--rx-power", "7"],
         "--rx-power"),
        (["--olt", "olt-1", "--pon-port", "0/1/0", "--serial", SN_A, "--rx-power", "-41"],
         "--rx-power"),
    ],
)  # fmt: skip
def test_cli_plug_bad_input(tmp_path: Path, lab_olt: LabOlt, args: list[str], named: str) -> None:
    write_lab_file(tmp_path, lab_olt)
    done = lab_ont(tmp_path, "plug", *args)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
    assert lab_olt.state.plugged() == []


def test_cli_unplug_bad_input(tmp_path: Path, lab_olt: LabOlt) -> None:
    write_lab_file(tmp_path, lab_olt)
    lab_olt.admin("plug", fsp="0/1/0", serial=SN_A)
    for args, named in [
        (["--serial", "nothex0000000000"], "--serial"),
        (["--serial", SN_B], "neither plugged"),
        (["--serial", SN_A, "--olt", "olt-2"], "--olt"),
    ]:
        done = lab_ont(tmp_path, "unplug", *args)
        assert done.returncode == 2 and named in done.stderr, (args, done.stderr)
    assert [p["serial"] for p in lab_olt.state.plugged()] == [SN_A]


def test_cli_without_a_running_lab(tmp_path: Path, lab_olt: LabOlt) -> None:
    plug = ["plug", "--olt", "olt-1", "--pon-port", "0/1/0", "--serial", SN_A]
    done = lab_ont(tmp_path, *plug)
    assert done.returncode == 2 and "no running lab" in done.stderr
    gone = subprocess.Popen(["true"])
    gone.wait()
    write_lab_file(tmp_path, lab_olt, pid=gone.pid)  # left by a lab that has stopped
    done = lab_ont(tmp_path, *plug)
    assert done.returncode == 2 and "no running lab" in done.stderr
    assert lab_olt.state.plugged() == []
