"""`fiberflow lab` as a user runs it: a subprocess that serves until SIGTERM / SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fiberflow.devices.inventory import load_inventory
from fiberflow.devices.olt.huawei import HuaweiOlt
from fiberflow.lab.harness import FIBERFLOW, processes_of, stack_env


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    data_dir = tmp_path / "data"
    out = (tmp_path / "lab.out").open("wb")
    err = (tmp_path / "lab.err").open("wb")
    proc = subprocess.Popen(
        [*FIBERFLOW, "lab", "--data-dir", str(data_dir), *args],
        env=stack_env(data_dir),
        stdout=out,
        stderr=err,
        cwd=tmp_path,
        start_new_session=True,
    )
    out.close()
    err.close()
    return proc, data_dir


def _wait_ready(proc: subprocess.Popen[bytes], lab_file: Path, tmp_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if lab_file.exists():
            doc: dict[str, Any] = json.loads(lab_file.read_text())
            if doc.get("pid") == proc.pid:  # not a stale file of an earlier run
                return doc
        if proc.poll() is not None:
            raise AssertionError(f"lab exited {proc.returncode}: {_text(tmp_path, 'lab.err')}")
        time.sleep(0.1)
    raise AssertionError(f"no lab.json within 60 s: {_text(tmp_path, 'lab.err')}")


def _text(tmp_path: Path, name: str) -> str:
    return (tmp_path / name).read_text(errors="replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_lab_serves_until_signalled(tmp_path: Path, sig: signal.Signals) -> None:
    proc, data_dir = _start(tmp_path)
    try:
        doc = _wait_ready(proc, data_dir / "lab.json", tmp_path)
        inv_path = Path(doc["inventory"])
        assert inv_path == data_dir / "lab-inventory.yaml"
        inv = load_inventory(inv_path)
        assert [o.name for o in inv.olts] == ["olt-1", "olt-2"]
        assert [b.name for b in inv.bngs] == ["bng-1"] and len(inv.plans) == 3
        ssh_ports = {o.port for o in inv.olts} | {inv.bng("bng-1").port}
        assert ssh_ports <= set(doc["ports"])
        assert {inv.radius.auth_port, inv.bng("bng-1").nas_port} <= set(doc["ports"])
        assert doc["admin"]["devices"]["olt-1"]["port"] == inv.olt("olt-1").port
        with socket.create_connection(("127.0.0.1", inv.olt("olt-2").port), timeout=5) as s:
            assert s.recv(64).startswith(b"SSH-2.0-")
        # Another process drives the lab through the written inventory alone.
        if sig == signal.SIGTERM:
            assert HuaweiOlt(inv.olt("olt-1")).find_free_ont_id("0/2/15") == 0

        proc.send_signal(sig)
        assert proc.wait(30) == 0, _text(tmp_path, "lab.err")
    finally:
        _stop(proc)
    assert not (data_dir / "lab.json").exists()
    assert processes_of(data_dir) == []
    lines = _text(tmp_path, "lab.out").splitlines()
    for name, platform in [
        ("olt-1", "huawei_olt"),
        ("olt-2", "huawei_olt"),
        ("bng-1", "cisco_ios"),
    ]:
        port = inv.olt(name).port if name.startswith("olt") else inv.bng(name).port
        assert any(
            line.split()[:3] == [name, platform, f"127.0.0.1:{port}/tcp"] for line in lines
        ), lines
    assert "Traceback" not in _text(tmp_path, "lab.err")


def test_lab_honours_inventory_path(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "inv.yaml"
    stale = tmp_path / "data" / "lab.json"  # left by a killed run: must not mean "ready"
    stale.parent.mkdir()
    stale.write_text('{"inventory": "stale"}')
    proc, data_dir = _start(tmp_path, "--inventory", str(target))
    try:
        doc = _wait_ready(proc, data_dir / "lab.json", tmp_path)
        assert doc["inventory"] == str(target)
        assert load_inventory(target).olt("olt-1").port in doc["ports"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        _stop(proc)
    assert target.exists() and not (data_dir / "lab.json").exists()


def test_lab_refuses_an_unwritable_inventory_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    proc, data_dir = _start(tmp_path, "--inventory", str(blocker / "inv.yaml"))
    try:
        assert proc.wait(60) == 2
    finally:
        _stop(proc)
    err = _text(tmp_path, "lab.err").splitlines()
    assert len(err) == 1 and err[0].startswith("fiberflow: --inventory: "), err
    assert str(blocker) in err[0]
    assert not (data_dir / "lab.json").exists()
