"""A plan change on a whole stack as a user runs it: the API starts the ``change-plan``
deployment, the worker runs it against the lab, and the SSE stream shows its five
steps, the session's outcome and the completion; the service keeps its IP and VLAN."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from fiberflow.lab.harness import FIBERFLOW, running_stack, stack_env, wait_healthy

pytestmark = pytest.mark.slow

TENANT = "4a1c7e92-6b3d-4f18-9c2e-5d7f8a0b1c24"


Events = list[tuple[str, dict[str, Any]]]


def _until_done(api_url: str, sid: str, headers: dict[str, str]) -> tuple[Events, str]:
    """The events up to the next completed or failed one, and the last event id."""
    events: Events = []
    last_id = ""
    url = f"{api_url}/api/v1/realtime/service-lifecycle/{sid}"
    with (
        httpx.Client(timeout=httpx.Timeout(5, read=180)) as client,
        connect_sse(client, "GET", url, headers=headers) as source,
    ):
        for sse in source.iter_sse():
            if not sse.data:
                continue  # a heartbeat
            events.append((sse.event, sse.json()))
            last_id = sse.id
            if sse.event.endswith((".completed", ".failed")):
                break
    return events, last_id


def test_a_plan_change_through_the_deployment(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        wait_healthy(stack.api_url, stack.proc)
        token = subprocess.run(
            [
                *FIBERFLOW,
                "token",
                "--tenant",
                TENANT,
                "--role",
                "operator",
                "--data-dir",
                str(stack.data_dir),
            ],
            env=stack_env(stack.data_dir),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        body = {
            "customer_ref": "cust-plan",
            "plan": "100M",
            "olt": "olt-1",
            "pon_port": "0/1/9",
            "ont_serial": "48575443ABCD0077",
        }
        # The POST waits for the Prefect server to create the run: generous on a loaded box.
        created = httpx.post(
            f"{stack.api_url}/api/v1/services", json=body, headers=auth, timeout=30
        )
        assert created.status_code == 202, created.text
        sid = created.json()["id"]
        provisioned, last_id = _until_done(stack.api_url, sid, auth)
        assert provisioned[-1][0] == "service.provisioning.completed", provisioned[-1]
        before = httpx.get(f"{stack.api_url}/api/v1/services/{sid}", headers=auth).json()

        r = httpx.post(
            f"{stack.api_url}/api/v1/services/{sid}/change-plan",
            json={"plan": "1G"},
            headers=auth,
            timeout=30,
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "changing_plan"
        # From after provisioning's last event: only the plan change's come.
        events, _ = _until_done(stack.api_url, sid, {**auth, "Last-Event-ID": last_id})

        assert events[-1][0] == "service.plan_change.completed", events[-1]
        progress = [(d["step"], d["status"]) for k, d in events if k.endswith(".progress")]
        assert progress == [
            (1, "queued"),  # announced by the API before the run exists
            (1, "validating"),
            (2, "updating_radius"),
            (3, "updating_bng"),
            (4, "applying"),
            (4, "applied"),
            (5, "completed"),
        ]
        applied = next(d["message"] for k, d in events if d.get("status") == "applied")
        assert applied == "Speed changed on the live session (CoA acknowledged)"
        # The announcement went out before the run had an id; every event after it is the run's.
        assert events[0][1]["flow_run_id"] is None
        assert {d["flow_run_id"] for _, d in events[1:]} == {r.json()["flow_run_id"]}
        after = httpx.get(f"{stack.api_url}/api/v1/services/{sid}", headers=auth).json()
        assert (after["status"], after["plan"]) == ("active", "1G")
        for field in ("ip_address", "vlan", "radius_username", "ont_id"):
            assert after[field] == before[field], field
