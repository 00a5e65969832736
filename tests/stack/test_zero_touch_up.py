"""Zero-touch activation on a whole stack as a user runs it: an order without a serial
waits, the installer plugs the ONT (``fiberflow lab ont plug``), the scheduled
``discover-onts`` deployment binds it on its next pass and the worker provisions it,
all on one SSE stream."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from fiberflow.lab.harness import FIBERFLOW, running_stack, stack_env, wait_healthy

pytestmark = pytest.mark.slow

TENANT = "7d2e9c41-3b5a-4f60-8e1d-2c4b6a8f0e13"
SERIAL = "48575443ABCD0042"


def test_a_waiting_order_is_provisioned_once_its_ont_is_plugged(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        wait_healthy(stack.api_url, stack.proc)
        env = stack_env(stack.data_dir)
        token = subprocess.run(
            [*FIBERFLOW, "token", "--tenant", TENANT, "--role", "operator",
             "--data-dir", str(stack.data_dir)],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        body = {"customer_ref": "cust-ztp", "plan": "100M", "olt": "olt-2",
                "pon_port": "0/2/14", "activation": "on_discovery"}  # fmt: skip
        # Generous on a loaded box (the suite runs on parallel workers).
        created = httpx.post(
            f"{stack.api_url}/api/v1/services", json=body, headers=auth, timeout=30
        )
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "awaiting_ont"
        sid = created.json()["id"]

        events: list[tuple[str, dict[str, object]]] = []
        url = f"{stack.api_url}/api/v1/realtime/service-lifecycle/{sid}"
        # A pass runs every minute: the read timeout covers one schedule tick and the run.
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=180)) as client,
            connect_sse(client, "GET", url, headers=auth) as source,
        ):
            for sse in source.iter_sse():
                if not sse.data:
                    # A heartbeat: httpx-sse surfaces it as a data-less message that
                    # repeats the last id. The wait for the pass spans several.
                    continue
                events.append((sse.event, sse.json()))
                if len(events) == 1:
                    assert sse.json()["status"] == "waiting", sse.data
                    plugged = subprocess.run(
                        [*FIBERFLOW, "lab", "ont", "plug", "--olt", "olt-2",
                         "--pon-port", "0/2/14", "--serial", SERIAL,
                         "--data-dir", str(stack.data_dir)],
                        env=env, capture_output=True, text=True,
                    )  # fmt: skip
                    assert plugged.returncode == 0, plugged.stderr
                if sse.event.endswith((".completed", ".failed")):
                    break
        assert events[-1][0] == "service.provisioning.completed", events[-1]
        statuses = [d["status"] for k, d in events if k.endswith(".progress")]
        assert statuses[0] == "waiting" and "validating" in statuses
        svc = httpx.get(f"{stack.api_url}/api/v1/services/{sid}", headers=auth).json()
        assert (svc["status"], svc["ont_serial"]) == ("active", SERIAL)
        seen = httpx.get(f"{stack.api_url}/api/v1/discovery", headers=auth).json()
        assert seen["waiting"] == []
