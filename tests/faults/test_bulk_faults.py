"""A bulk run survives its worker and its API dying mid-batch.

The worker's whole process tree SIGKILLed (the parent run and the children in flight,
no hook runs): ``fiberflow up`` starts a new worker, the API's reconciler fails the
killed children (each service's own recovery) and starts a new parent for the bulk
(stack/bulk_recovery.py), which carries on from the items table. Every service ends in
exactly one terminal state, none is started twice for the bulk, and the bulk ends with
one ``bulk.completed``.

The API SIGKILLed and started again mid-batch: the batch never needed it (the parent
runs on the worker), and the restarted API's reconciler leaves the live parent alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import text

from fiberflow.lab.admin import admin_call
from fiberflow.lab.harness import (
    FIBERFLOW,
    RunningStack,
    free_port,
    running_stack,
    stack_env,
    wait_healthy,
)
from tests.fixtures.bulk import (
    auth,
    bulk_events,
    engine,
    items,
    lab_ports,
    prefect_runs,
    seed,
    wait_items,
    wait_status,
)

pytestmark = pytest.mark.slow
N = 10
RATE = "600"  # one start every 0.1 s: the device caps, not the pace, hold the batch back
# (one run in flight per device session: a kill then finds services done, running and
# not started)
TERMINAL = {"completed", "failed", "skipped"}


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and those of all its descendants (flow runs)."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    for group in {os.getpgid(p.pid) for p in procs if p.is_running()}:
        os.killpg(group, signal.SIGKILL)


def _slow_bng(stack: RunningStack) -> None:
    """Every BNG command takes a while: a service's run lasts seconds, so the kill
    lands with runs in flight."""
    admin_call(lab_ports(stack)["bng-1"], "faults", latency=0.5)


def _start(api_url: str, ids: list[str], headers: dict[str, str]) -> str:
    r = httpx.post(f"{api_url}/api/v1/bulk/suspend", json={"service_ids": ids},
                   headers=headers, timeout=60)  # fmt: skip
    assert r.status_code == 202, r.text
    bulk_id: str = r.json()["id"]
    return bulk_id


def _assert_settled(
    stack: RunningStack, bulk_id: str, ids: list[str], done: dict[str, Any]
) -> None:
    """Each service in exactly one terminal state, counts adding up, one child run per
    started service (by the bulk's tags), one bulk.completed, last."""
    assert done["status"] == "completed", done
    c = done["counts"]
    assert c["pending"] == c["running"] == 0 and sum(c.values()) == N == done["total"], c
    rows = items(stack, bulk_id)
    assert sorted(r["service_id"] for r in rows) == sorted(ids)
    assert all(r["state"] in TERMINAL for r in rows), rows
    for state in TERMINAL:
        assert c[state] == sum(r["state"] == state for r in rows), (state, c)
    for r in rows:
        sid = r["service_id"]
        children = prefect_runs(stack, f"bulk:{bulk_id}", f"service:{sid}")
        suspensions = prefect_runs(stack, f"service:{sid}", "operation:suspension")
        if r["state"] == "skipped":
            assert children == [], r
        else:
            assert [run["id"] for run in children] == [r["flow_run_id"]], (r, children)
        # Nothing outside the bulk suspended it either.
        assert len(suspensions) == len(children), (sid, suspensions)
    kinds = [kind for kind, _ in bulk_events(stack, bulk_id)]
    assert kinds.count("bulk.completed") == 1 and kinds[-1] == "bulk.completed", kinds
    with engine(stack).connect() as conn:
        statuses = dict(conn.execute(text("SELECT id, status FROM service_instances")).all())
    for r in rows:
        if r["state"] == "completed":
            assert statuses[r["service_id"]] == "suspended", r


def test_worker_sigkilled_mid_batch(tmp_path: Path) -> None:
    with running_stack(tmp_path, FIBERFLOW_BULK_RATE=RATE, FIBERFLOW_BULK_RUNS_PER_SESSION="1",
                       FIBERFLOW_RECONCILE_INTERVAL_SECONDS="2") as stack:  # fmt: skip
        wait_healthy(stack.api_url, stack.proc, timeout=300)
        ids = seed(stack, N)
        _slow_bng(stack)
        headers = auth(stack)
        bulk_id = _start(stack.api_url, ids, headers)
        with engine(stack).connect() as conn:
            first_parent = conn.scalar(text("SELECT flow_run_id FROM bulk_runs WHERE id = :b"),
                                       {"b": bulk_id})  # fmt: skip
        # Mid-batch: one service done, some in flight, some not started.
        at_kill = wait_items(stack, bulk_id, lambda c: c.get("completed", 0) >= 1
                             and c.get("running", 0) >= 1 and c.get("pending", 0) >= 1)  # fmt: skip
        worker = stack.info()["children"]["worker"]
        _kill_tree(worker)
        assert at_kill.get("pending", 0) >= 1, at_kill

        done = wait_status(stack, bulk_id, headers, {"completed", "failed", "cancelled"},
                           timeout=600)  # fmt: skip
        _assert_settled(stack, bulk_id, ids, done)
        # A new worker ran a new parent.
        assert stack.info()["children"]["worker"] != worker
        assert done["flow_run_id"] != first_parent, done
        parents = [r for r in prefect_runs(stack, f"bulk:{bulk_id}")
                   if not any(t.startswith("service:") for t in r["tags"])]  # fmt: skip
        assert {r["id"] for r in parents} == {first_parent, done["flow_run_id"]}
        assert {r["id"]: r["state_type"] for r in parents}[first_parent] == "CRASHED"


def _api(stack: RunningStack, port: int) -> subprocess.Popen[bytes]:
    """``fiberflow api`` joining the stack on ``port``, its reconciler on."""
    log = (stack.data_dir.parent / f"api-{port}.log").open("ab")
    return subprocess.Popen(
        [*FIBERFLOW, "api", "--port", str(port), "--data-dir", str(stack.data_dir)],
        env=stack_env(stack.data_dir, FIBERFLOW_RECONCILE_INTERVAL_SECONDS="2",
                      FIBERFLOW_BULK_RATE=RATE),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def test_api_restarted_mid_batch(tmp_path: Path) -> None:
    # up's own API runs no reconciler: the API killed and started again is the only one.
    with running_stack(tmp_path, FIBERFLOW_BULK_RATE=RATE, FIBERFLOW_BULK_RUNS_PER_SESSION="1",
                       FIBERFLOW_RECONCILE_INTERVAL_SECONDS="0") as stack:  # fmt: skip
        wait_healthy(stack.api_url, stack.proc, timeout=300)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        api = _api(stack, port)
        try:
            wait_healthy(url, api, timeout=300)
            ids = seed(stack, N)
            _slow_bng(stack)
            headers = auth(stack)
            bulk_id = _start(url, ids, headers)
            parent = wait_status(stack, bulk_id, headers, {"running"})["flow_run_id"]
            wait_items(stack, bulk_id, lambda c: c.get("running", 0) >= 1)
            _kill_tree(api.pid)
            api.wait(30)
            api = _api(stack, port)
            wait_healthy(url, api, timeout=300)
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                deadline = time.monotonic() + 600
                while (done := client.get(f"/api/v1/bulk/{bulk_id}").json())["status"] not in {
                    "completed", "failed", "cancelled"}:  # fmt: skip
                    assert time.monotonic() < deadline, done
                    time.sleep(0.5)
            _assert_settled(stack, bulk_id, ids, done)
            # The same parent all along: the restarted reconciler left it alone.
            assert done["flow_run_id"] == parent
            assert done["counts"]["completed"] == N, done
        finally:
            if api.poll() is None:
                _kill_tree(api.pid)


HOLD_KEY = 4343  # the advisory lock a held statement of the parent waits for
HOLDS = {
    # The service's run exists in Prefect; the parent dies before it records its id.
    "record": ("bulk_items", "OLD.flow_run_id IS NULL AND NEW.flow_run_id IS NOT NULL"),
    # The item is claimed; the parent dies before the service's transition commits.
    "begin": ("service_instances", "NEW.status = 'suspending' AND OLD.status <> 'suspending'"),
}


def _hold(table: str, when: str) -> list[str]:
    return [
        "CREATE FUNCTION hold_bulk() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_advisory_xact_lock_shared({HOLD_KEY}); RETURN NEW; END $$",
        f"CREATE TRIGGER hold_bulk BEFORE UPDATE ON {table} FOR EACH ROW WHEN ({when}) "
        "EXECUTE FUNCTION hold_bulk()",
    ]


def _held(stack: RunningStack) -> bool:
    with engine(stack).connect() as conn:
        return bool(conn.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                 "AND objid = :key"), {"key": HOLD_KEY}))  # fmt: skip


@pytest.mark.parametrize("moment", list(HOLDS))
def test_parent_killed_between_claim_and_record(tmp_path: Path, moment: str) -> None:
    """An item claimed (``running``) whose run id the dead parent never recorded: the
    new parent finds the run it started by its tags, or starts the one it never did;
    either way one run for the service."""
    with running_stack(tmp_path, FIBERFLOW_BULK_RATE=RATE, FIBERFLOW_BULK_RUNS_PER_SESSION="1",
                       FIBERFLOW_RECONCILE_INTERVAL_SECONDS="2") as stack:  # fmt: skip
        wait_healthy(stack.api_url, stack.proc, timeout=300)
        ids = seed(stack, 3)
        headers = auth(stack)
        db = engine(stack)
        with db.connect() as hold:
            hold.execute(text("SELECT pg_advisory_lock(:key)"), {"key": HOLD_KEY})
            hold.commit()
            with db.begin() as conn:
                for sql in _hold(*HOLDS[moment]):
                    conn.execute(text(sql))
            bulk_id = _start(stack.api_url, ids, headers)
            deadline = time.monotonic() + 240
            while not _held(stack):
                assert time.monotonic() < deadline, "the parent never reached the hold"
                time.sleep(0.2)
            first = items(stack, bulk_id)[0]
            assert (first["state"], first["flow_run_id"]) == ("running", None), first
            _kill_tree(stack.info()["children"]["worker"])
            hold.execute(text("SELECT pg_advisory_unlock_all()"))
            hold.commit()
        with db.begin() as conn:
            conn.execute(text(f"DROP TRIGGER hold_bulk ON {HOLDS[moment][0]}"))
            conn.execute(text("DROP FUNCTION hold_bulk()"))
        done = wait_status(stack, bulk_id, headers, {"completed", "failed", "cancelled"},
                           timeout=600)  # fmt: skip
        assert done["counts"]["completed"] + done["counts"]["failed"] == 3, done
        assert sum(done["counts"].values()) == len(ids)
        for r in items(stack, bulk_id):
            runs = prefect_runs(stack, f"bulk:{bulk_id}", f"service:{r['service_id']}")
            assert [run["id"] for run in runs] == [r["flow_run_id"]], (r, runs)
        kinds = [kind for kind, _ in bulk_events(stack, bulk_id)]
        assert kinds.count("bulk.completed") == 1, kinds
