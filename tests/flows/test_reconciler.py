"""A worker's process group SIGKILLed mid-run: no hook runs, yet the service ends
``failed`` with a failed event, compensated, within about a minute."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from devices.lab.admin import admin_call
from tests.fixtures.stack import FIBERFLOW, running_stack, stack_env, wait_healthy

pytestmark = pytest.mark.slow
TENANT = "4f1c2a4e-8d7b-4c3a-9e2f-0a1b2c3d4e5f"


def _kill_group_and_descendants(pid: int) -> None:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    groups = {os.getpgid(p.pid) for p in procs if p.is_running()}
    for group in groups:
        os.killpg(group, signal.SIGKILL)


def test_sigkilled_worker_run_is_failed_and_compensated(tmp_path: Path) -> None:
    with running_stack(tmp_path, FIBERFLOW_RECONCILE_INTERVAL_SECONDS="5") as stack:
        wait_healthy(stack.api_url, stack.proc)
        lab = json.loads((stack.data_dir / "lab.json").read_text())
        ports = {d["name"]: d["port"] for d in lab["devices"]}
        # Slow the OLT so the run is mid-step-3 when the worker dies.
        admin_call(ports["olt-1"], "faults", latency=6.0, latency_match="^ont add")
        token = subprocess.run(
            [*FIBERFLOW, "token", "--tenant", TENANT, "--role", "operator"],
            env=stack_env(stack.data_dir), capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        body = {"customer_ref": "cust-kill", "plan": "100M", "olt": "olt-1",
                "pon_port": "0/1/1", "ont_serial": "48575443AABBCCDD"}  # fmt: skip
        created = httpx.post(f"{stack.api_url}/api/v1/services", json=body, headers=auth)
        assert created.status_code == 202, created.text
        sid = created.json()["id"]
        events_url = f"{stack.api_url}/api/v1/services/{sid}/events"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            steps = [e["data"].get("step") for e in httpx.get(events_url, headers=auth).json()]
            if 3 in steps:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the run never reached step 3")
        worker_pid = stack.info()["children"]["worker"]
        _kill_group_and_descendants(worker_pid)
        killed_at = time.monotonic()

        svc: dict = {}
        while time.monotonic() - killed_at < 240:
            svc = httpx.get(f"{stack.api_url}/api/v1/services/{sid}", headers=auth).json()
            if svc["status"] == "failed":
                break
            time.sleep(1)
        assert svc["status"] == "failed", svc
        # On the worker's own host the dead process is noticed by its pid, without
        # waiting for missed heartbeats (no timing assertion: shared machines vary).
        assert "process is gone" in svc["error"], svc["error"]
        assert (svc["ip_address"], svc["vlan"], svc["ont_id"]) == (None, None, None)
        events = httpx.get(events_url, headers=auth).json()
        assert events[-1]["event_type"] == "service.provisioning.failed"
        assert "flow run" in events[-1]["data"]["error"]
        # Compensated: nothing on the devices, in RADIUS or IPAM.
        assert admin_call(ports["olt-1"], "dump") == {"onts": [], "service_ports": []}
        assert admin_call(ports["bng-1"], "dump") == {"subinterfaces": []}
        db = sqlite3.connect(stack.data_dir / "fiberflow.db")
        for table in ("ip_allocations", "vlan_allocations", "radcheck", "radreply"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        # up restarted the worker.
        assert stack.info()["children"]["worker"] != worker_pid
        assert psutil.Process(stack.info()["children"]["worker"]).is_running()
