"""Bulk runs on a whole ``fiberflow up`` (the parent and its children on the worker):
the pace, the per-device session limit measured on the lab devices, forbidden statuses
skipped, four-eyes approval and rejection, blackout hold and cancel."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from fiberflow.lab.admin import admin_call
from fiberflow.lab.harness import running_stack, wait_healthy
from fiberflow.lab.lab_inventory import BNG_MAX_SESSIONS, OLT_MAX_SESSIONS
from tests.fixtures.bulk import auth, bulk_events, engine, items, lab_ports, seed, wait_status

pytestmark = pytest.mark.slow
RATE = 600  # starts per minute: one every 0.1 s
SPACING = 60 / RATE
TOLERANCE = 0.02  # clock resolution and rounding, never a speed assertion


def test_a_paced_bulk_within_device_limits_skips_forbidden_statuses(tmp_path: Path) -> None:
    with running_stack(tmp_path, FIBERFLOW_BULK_RATE=str(RATE)) as stack:
        wait_healthy(stack.api_url, stack.proc)
        ids = seed(stack, 12)
        with engine(stack).begin() as conn:  # two already suspended: skipped, not errors
            conn.execute(text("UPDATE service_instances SET status = 'suspended' "
                              "WHERE id IN (:a, :b)"), {"a": ids[3], "b": ids[7]})  # fmt: skip
        ports = lab_ports(stack)
        for name in ("olt-1", "olt-2", "bng-1"):
            admin_call(ports[name], "reset_counters")
        headers = auth(stack)
        r = httpx.post(f"{stack.api_url}/api/v1/bulk/suspend", json={"service_ids": ids},
                       headers=headers, timeout=30)  # fmt: skip
        assert r.status_code == 202, r.text
        bulk_id = r.json()["id"]
        done = wait_status(stack, bulk_id, headers, {"completed", "failed"})
        assert done["status"] == "completed", done
        assert done["counts"] == {"pending": 0, "running": 0, "completed": 10, "failed": 0,
                                  "skipped": 2}, done  # fmt: skip
        rows = items(stack, bulk_id)
        skipped = {r["service_id"]: r["reason"] for r in rows if r["state"] == "skipped"}
        assert skipped == {ids[3]: "status suspended forbids suspension",
                           ids[7]: "status suspended forbids suspension"}  # fmt: skip
        # The pace: starts (items' started_at) at least 60/rate apart.
        starts = sorted(r["started_at"] for r in rows if r["started_at"] is not None)
        assert len(starts) == 10
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
        assert min(gaps) >= SPACING - TOLERANCE, gaps
        # Never more sessions on a device than its limit, as the device counted them.
        for name in ("olt-1", "olt-2", "bng-1"):
            counters = admin_call(ports[name], "counters")
            limit = BNG_MAX_SESSIONS if name.startswith("bng") else OLT_MAX_SESSIONS
            assert counters["peak_open"] <= limit, (name, counters)
            assert counters["refused"] == 0, (name, counters)  # the device never said no
        # Each service's run is a child of the parent run in Prefect.
        prefect = stack.info()["prefect_api_url"]
        run = httpx.get(f"{prefect}/flow_runs/{rows[0]['flow_run_id']}").json()
        assert run["parent_task_run_id"] is not None
        with engine(stack).connect() as conn:
            statuses = dict(conn.execute(text("SELECT id, status FROM service_instances")).all())
            kinds = [e for (e,) in conn.execute(text(
                "SELECT event_type FROM event_log WHERE operation = 'bulk' "
                "AND operation_id = :b ORDER BY id"), {"b": bulk_id})]  # fmt: skip
        assert sorted(statuses.values()).count("suspended") == 12
        assert kinds[-1] == "bulk.completed" and kinds.count("bulk.completed") == 1


def test_four_eyes_reject_then_approve(tmp_path: Path) -> None:
    with running_stack(tmp_path, FIBERFLOW_BULK_RATE=str(RATE)) as stack:
        wait_healthy(stack.api_url, stack.proc)
        ids = seed(stack, 4)
        alice, bob = auth(stack, "alice"), auth(stack, "bob")
        url = f"{stack.api_url}/api/v1/bulk"
        first = httpx.post(f"{url}/terminate", json={"service_ids": ids[:2]}, headers=alice,
                           timeout=30).json()["id"]  # fmt: skip
        wait_status(stack, first, alice, {"awaiting_approval"})
        assert httpx.post(f"{url}/{first}/approve", headers=alice, timeout=30).status_code == 403
        assert httpx.post(f"{url}/{first}/reject", headers=bob, timeout=60).status_code == 200
        rejected = wait_status(stack, first, alice, {"rejected", "completed", "failed"})
        assert rejected["status"] == "rejected" and rejected["counts"]["skipped"] == 2
        assert {r["reason"] for r in items(stack, first)} == {"rejected"}

        second = httpx.post(f"{url}/terminate", json={"service_ids": ids[2:]}, headers=alice,
                            timeout=30).json()["id"]  # fmt: skip
        wait_status(stack, second, alice, {"awaiting_approval"})
        ok = httpx.post(f"{url}/{second}/approve", headers=bob, timeout=60)
        assert ok.status_code == 200 and ok.json()["approved_by"] == "bob", ok.text
        done = wait_status(stack, second, alice, {"completed", "failed", "rejected"})
        assert done["status"] == "completed" and done["counts"]["completed"] == 2, done
        assert done["approved_by"] == "bob"


def test_blackout_holds_at_scheduled_and_cancel_skips(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    # Today and tomorrow: the window cannot end while the test runs.
    window = f"{today.isoformat()},{(today + timedelta(days=1)).isoformat()}"
    with running_stack(tmp_path, FIBERFLOW_BULK_RATE=str(RATE),
                       FIBERFLOW_BULK_BLACKOUT=window) as stack:  # fmt: skip
        wait_healthy(stack.api_url, stack.proc, timeout=300)
        ids = seed(stack, 5)
        headers = auth(stack)
        url = f"{stack.api_url}/api/v1/bulk"
        bulk_id = httpx.post(f"{url}/resume", json={"service_ids": ids}, headers=headers,
                             timeout=30).json()["id"]  # fmt: skip
        # The parent reached the window and says it holds: a bulk.progress at scheduled.
        deadline = time.monotonic() + 240
        while not any(kind == "bulk.progress" and data["status"] == "scheduled"
                      for kind, data in bulk_events(stack, bulk_id)):  # fmt: skip
            assert time.monotonic() < deadline, bulk_events(stack, bulk_id)
            time.sleep(0.5)
        held = wait_status(stack, bulk_id, headers, {"scheduled"})
        assert held["counts"]["pending"] == 5 and held["started_at"] is None, held
        r = httpx.post(f"{url}/{bulk_id}/cancel", headers=headers, timeout=30)
        assert r.status_code == 200
        done = wait_status(stack, bulk_id, headers, {"cancelled", "completed", "failed"})
        assert done["status"] == "cancelled" and done["counts"]["skipped"] == 5, done
        assert {r["reason"] for r in items(stack, bulk_id)} == {"cancelled"}
        assert all(r["started_at"] is None for r in items(stack, bulk_id))
        kinds = [kind for kind, _ in bulk_events(stack, bulk_id)]
        assert kinds.count("bulk.completed") == 1 and kinds[-1] == "bulk.completed", kinds
        with engine(stack).connect() as conn:
            statuses = {s for (s,) in conn.execute(text("SELECT status FROM service_instances"))}
        assert statuses == {"active"}  # nothing touched
