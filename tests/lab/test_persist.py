"""The lab's device state survives restarts of the same data dir: saved (atomically,
debounced) after changes and at shutdown, restored at start; a killed lab leaves a
whole file; a damaged file stops the start with a message naming it."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from netmiko import ConnectHandler

from fiberflow.core.db.migrate import upgrade
from fiberflow.devices.olt.parsing import parse_ont_detail
from fiberflow.lab.admin import admin_call
from fiberflow.lab.persist import STATE_FILE, LabStateError, read_state
from fiberflow.lab.runner import LabStack, RunningLab
from tests.lab.lab_process import start_lab

UPLINK = "GigabitEthernet0/0/1"
SN_A, SN_B, SN_C = "485754430000000A", "485754430000000B", "485754430000000C"


def _ont(fsp: str, ont_id: int, serial: str) -> dict[str, Any]:
    return {"fsp": fsp, "ont_id": ont_id, "serial": serial, "description": f"ff-{ont_id}",
            "line_profile_id": 10, "service_profile_id": 10}  # fmt: skip


def _everything(lab: RunningLab) -> dict[str, Any]:
    """What every device holds, by its admin channel, online flags included."""
    out: dict[str, Any] = {}
    for name, olt in lab.olts.items():
        out[name] = {**admin_call(olt.port, "dump"), **admin_call(olt.port, "plugs")}
    for name, bng in lab.bngs.items():
        out[name] = admin_call(bng.port, "dump")
        out[name]["listed"] = bng.state.listed()
        out[name]["uplink"] = (bng.state.uplink_description, bng.state.uplink_shutdown)
    return out


def _make_changes(lab: RunningLab) -> None:
    olt, bng = lab.olts["olt-2"], lab.bng
    onts = [_ont("0/1/3", 0, SN_A), _ont("0/2/15", 7, SN_B)]
    ports = [{"fsp": "0/1/3", "ont_id": 0, "gem_port": 1, "vlan": 100},
             {"fsp": "0/2/15", "ont_id": 7, "gem_port": 1, "vlan": 101, "index": 40}]  # fmt: skip
    assert admin_call(olt.port, "seed", onts=onts, service_ports=ports)["failures"] == []
    admin_call(olt.port, "set_ont_active", fsp="0/2/15", ont_id=7, active=False)
    admin_call(olt.port, "plug", fsp="0/1/4", serial=SN_C, rx_power_dbm=-27.5)  # autofind
    admin_call(olt.port, "unplug", serial=SN_A)  # registered, dark
    with ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=bng.port, username="lab",
                        password="lab", secret="", use_keys=False) as conn:  # fmt: skip
        conn.enable()
        conn.send_config_set([
            f"interface {UPLINK}", "description core",
            f"interface {UPLINK}.100", "description ff-a", "encapsulation dot1Q 100 second-dot1q 7",
            "ip address 100.64.0.2 255.255.0.0", "service-policy input PLAN-1G-IN", "shutdown",
            f"interface {UPLINK}.101", "encapsulation dot1Q 101", f"no interface {UPLINK}.101",
        ])  # fmt: skip


def test_restart_with_the_same_state_file_brings_everything_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    upgrade(url)
    state = tmp_path / STATE_FILE
    with LabStack(url, ont_online_delay=0.1, state_file=state) as lab:
        _make_changes(lab)
        time.sleep(0.3)  # SN_A's ONT online, the others as they are
        before = _everything(lab)
    assert before["olt-2"]["plugs"] and before["bng-1"]["listed"][-1] == (f"{UPLINK}.101", None)
    with LabStack(url, ont_online_delay=0.1, state_file=state) as lab:
        after = _everything(lab)
    assert after == before
    assert not list(tmp_path.glob(f".{STATE_FILE}.*"))


def test_changes_are_saved_while_running_at_most_every_half_second(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    upgrade(url)
    state = tmp_path / STATE_FILE
    with LabStack(url, state_file=state) as lab:
        assert lab.saver is not None
        writes = lab.saver.writes
        olt = lab.olts["olt-1"]
        started = time.monotonic()
        for i in range(40):  # 40 changes in a burst
            admin_call(olt.port, "seed", onts=[_ont("0/1/0", i, f"48575443{i:08X}")])
        burst = time.monotonic() - started
        deadline = time.monotonic() + 5
        while len((read_state(state) or {})["olt-1"]["onts"]) < 40:
            assert time.monotonic() < deadline, "not saved within 5 s"
            time.sleep(0.05)
        assert lab.saver.writes - writes <= burst / 0.5 + 2
        # Reads change nothing: no write.
        writes = lab.saver.writes
        for _ in range(5):
            admin_call(olt.port, "dump")
        time.sleep(1.2)
        assert lab.saver.writes == writes


def test_a_damaged_state_file_is_a_start_up_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    upgrade(url)
    state = tmp_path / STATE_FILE
    with LabStack(url, state_file=state) as lab:
        admin_call(lab.olts["olt-1"].port, "seed", onts=[_ont("0/1/0", 1, SN_A)])
    whole = state.read_bytes()
    for damaged, message in [
        (whole[: len(whole) // 2], "is not valid JSON"),  # cut short mid-write
        (b'{"format": "something else"}', "is not a fiberflow lab state file"),
        (whole.replace(b'"kind":"olt"', b'"kind":"bng"', 1), "olt-1"),
        (
            whole.replace(b"[0,1,0,1,", b"[0,1,0,999,", 1),
            "olt-1: ont 0/1/0 999:  % Parameter error",
        ),
        (whole.replace(b"[0,1,0,1,", b"[0,7,0,1,", 1), "The port does not exist"),
    ]:
        state.write_bytes(damaged)
        stack = LabStack(url, state_file=state)
        with pytest.raises(LabStateError, match=str(state)) as err:
            stack.start()
            stack.close()
        assert message in str(err.value)
        assert state.read_bytes() == damaged  # left for the user to look at, never reset


def test_more_olts_than_asked_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    upgrade(url)
    state = tmp_path / STATE_FILE
    with LabStack(url, olts=3, state_file=state) as lab:
        admin_call(lab.olts["olt-3"].port, "seed", onts=[_ont("0/1/0", 1, SN_A)])
    with pytest.raises(LabStateError, match="holds bng-2, olt-3, which this lab does not run"):
        LabStack(url, olts=2, state_file=state).start()
    with LabStack(url, state_file=state) as lab:  # by default: as many as saved
        assert sorted(lab.olts) == ["olt-1", "olt-2", "olt-3"]
        assert lab.olts["olt-3"].state.find_serial(SN_A) is not None


def test_the_lab_command_restores_seeded_services_and_survives_a_kill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    lab = start_lab(data_dir)
    try:
        lab.ready()
        assert lab.cli("lab", "seed", "--services", "2000").returncode == 0
        state = data_dir / STATE_FILE
        assert lab.stop(signal.SIGTERM) == 0  # clean shutdown: saved
        saved = read_state(state)
        assert saved is not None and len(saved["bng-1"]["subinterfaces"]) == 2000
        # Started again: the devices hold the seeded services, online.
        lab = start_lab(data_dir)
        port = lab.ready()["admin"]["devices"]["olt-2"]["port"]
        ont = saved["olt-2"]["onts"][-1]
        with ConnectHandler(device_type="huawei_olt", host="127.0.0.1", port=port,
                            username="lab", password="lab", use_keys=False) as conn:  # fmt: skip
            conn.enable()
            text = conn.send_command(f"display ont info {ont[0]} {ont[1]} {ont[2]} {ont[3]}")
        info = parse_ont_detail(str(text))
        assert info is not None and (info.serial, info.run_state) == (ont[4], "online")
        # Killed while changes keep coming: the file on disk is always a whole one.
        stop = threading.Event()

        def churn() -> None:
            i = 0
            while not stop.is_set():
                try:
                    admin_call(port, "plug", fsp="0/1/1", serial=f"4857544F{i:08X}")
                except Exception:  # the kill cut the session: the churn is over
                    return
                i += 1

        worker = threading.Thread(target=churn, daemon=True)
        worker.start()
        time.sleep(2.0)
        lab.stop(signal.SIGKILL)
        stop.set()
        worker.join(10)
        killed = read_state(state)
        assert killed is not None and killed["olt-2"]["plugs"]
        # And the next start restores it, temporary files of the killed run gone.
        (data_dir / f".{STATE_FILE}.x1y2.tmp").write_text('{"half')
        lab = start_lab(data_dir)
        lab.ready()
        assert not list(data_dir.glob(f".{STATE_FILE}.*.tmp"))
        port = lab.ready()["admin"]["devices"]["olt-2"]["port"]
        assert len(admin_call(port, "plugs")["plugs"]) == len(killed["olt-2"]["plugs"])
    finally:
        lab.stop()


def test_the_lab_command_refuses_a_cut_short_state_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    state = data_dir / STATE_FILE
    state.write_text(json.dumps({"format": "fiberflow-lab-state", "version": 1,
                                 "devices": {"olt-1": {"kind": "olt"}}})[:50])  # fmt: skip
    lab = start_lab(data_dir)
    assert lab.proc.wait(60) == 2
    output = lab.output()
    assert f"fiberflow: lab state {state} is not valid JSON" in output
    assert "Traceback" not in output and not (data_dir / "lab.json").exists()
