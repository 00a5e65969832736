"""A flow-run process SIGKILLed after it committed the service's end status (``failed``,
or ``active``) and while it was storing the ``service.provisioning.failed`` (or
``completed``) event: the service is no longer transitional, so the stuck-run check
never sees it, and the portal would wait forever. The API's reconciler publishes the
missing event: once (history and SSE agree, same id), and reconcilers run again, two at
once, add none.

The kill lands at that exact point with a database-side hold this test controls: a
trigger on event_log makes the insert of that event wait for an advisory lock the test
holds. The run is seen waiting there (its backend's client port is one of the run
process's connections), then SIGKILLed; its insert never commits.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from httpx_sse import connect_sse
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import sessionmaker

from fiberflow.core.db.engine import make_engine
from fiberflow.events.publisher import EventPublisher
from fiberflow.lab.admin import admin_call
from fiberflow.lab.harness import FIBERFLOW, RunningStack, running_stack, stack_env, wait_healthy
from fiberflow.stack.reconciler import announce_missing

pytestmark = pytest.mark.slow

TENANT = "4f1c2a4e-8d7b-4c3a-9e2f-0a1b2c3d4e5f"
HOLD_KEY = 4242  # the advisory lock a held event's insert waits for
DROP_HOLD = ["DROP TRIGGER hold_event ON event_log", "DROP FUNCTION hold_event()"]


def _hold_trigger(event_type: str) -> list[str]:
    """Inserts of ``event_type`` wait (inside the trigger) until the test lets go."""
    return [
        "CREATE FUNCTION hold_event() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_advisory_xact_lock_shared({HOLD_KEY}); RETURN NEW; END $$",
        "CREATE TRIGGER hold_event BEFORE INSERT ON event_log FOR EACH ROW "
        f"WHEN (NEW.event_type = '{event_type}') EXECUTE FUNCTION hold_event()",
    ]


def _auth(stack: RunningStack) -> dict[str, str]:
    token = subprocess.run(
        [*FIBERFLOW, "token", "--tenant", TENANT, "--role", "operator"],
        env=stack_env(stack.data_dir), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def _held_insert(engine: Engine) -> int | None:
    """The backend pid waiting in the trigger for the hold, if one is."""
    with engine.connect() as conn:
        pid = conn.scalar(
            text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                 "AND classid = 0 AND objid = :key AND objsubid = 1"),
            {"key": HOLD_KEY},
        )  # fmt: skip
    return int(pid) if pid is not None else None


def _row(conn: Connection, sid: str) -> dict[str, Any]:
    row = conn.execute(
        text("SELECT status, error, run_process, flow_run_id, updated_at FROM service_instances "
             "WHERE id = :id"), {"id": sid},
    ).one()  # fmt: skip
    return dict(row._mapping)


def _history(stack: RunningStack, sid: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    url = f"{stack.api_url}/api/v1/services/{sid}/events"
    events: list[dict[str, Any]] = httpx.get(url, headers=auth, timeout=30).json()
    return events


def _kill_run_waiting_in(
    engine: Engine, backend: int, run_process: str, stack: RunningStack
) -> None:
    """SIGKILL the flow-run process whose database session is ``backend``."""
    with engine.connect() as conn:
        port = conn.scalar(text("SELECT client_port FROM pg_stat_activity WHERE pid = :p"),
                           {"p": backend})  # fmt: skip
    run = psutil.Process(int(run_process.rpartition(":")[2]))
    worker_pid = stack.info()["children"]["worker"]
    assert run.pid != worker_pid and worker_pid in [p.pid for p in run.parents()]
    assert port in {c.laddr.port for c in run.net_connections(kind="tcp")}, (port, run)
    run.kill()
    run.wait(60)


@pytest.mark.parametrize("kind", ["failed", "completed"])
def test_run_killed_between_end_status_and_terminal_event(tmp_path: Path, kind: str) -> None:
    event_type = f"service.provisioning.{kind}"
    with running_stack(tmp_path, FIBERFLOW_RECONCILE_INTERVAL_SECONDS="2") as stack:
        wait_healthy(stack.api_url, stack.proc)
        engine = make_engine(stack.info()["database_url"])
        lab = json.loads((stack.data_dir / "lab.json").read_text())
        ports = {d["name"]: d["port"] for d in lab["devices"]}
        if kind == "failed":
            # Provisioning fails for good in step 3 (the OLT refuses the service-port).
            admin_call(ports["olt-1"], "faults", error_replies={
                r"^service-port": "Failure: Conflicted service virtual port index"})  # fmt: skip
        auth = _auth(stack)
        with engine.connect() as hold:
            hold.execute(text("SELECT pg_advisory_lock(:key)"), {"key": HOLD_KEY})
            hold.commit()
            with engine.begin() as conn:
                for sql in _hold_trigger(event_type):
                    conn.execute(text(sql))
            body = {"customer_ref": "cust-kill", "plan": "100M", "olt": "olt-1",
                    "pon_port": "0/1/1", "ont_serial": "48575443AABBCC0F"}  # fmt: skip
            # The POST waits for the Prefect server to create the run: generous on a loaded box.
            created = httpx.post(
                f"{stack.api_url}/api/v1/services", json=body, headers=auth, timeout=30
            )
            assert created.status_code == 202, created.text
            sid = created.json()["id"]

            deadline = time.monotonic() + 240
            while (backend := _held_insert(engine)) is None:
                assert time.monotonic() < deadline, f"the run never stored its {kind} event"
                time.sleep(0.2)
            with engine.connect() as conn:
                row = _row(conn, sid)
            # The row is committed (failed, or active); the terminal event is not in the log.
            before = _history(stack, sid, auth)
            assert not any(e["event_type"].endswith((".completed", ".failed")) for e in before)
            if kind == "failed":
                assert row["status"] == "failed" and "Conflicted" in row["error"], row
                failures = [e["data"]["step"] for e in before if e["data"].get("status") == kind]
                assert failures == [3]
            else:
                assert row["status"] == "active" and row["error"] is None, row
                assert (before[-1]["data"]["step"], before[-1]["data"]["status"]) == (6, kind)
            _kill_run_waiting_in(engine, backend, row["run_process"], stack)
            # The dead run's insert goes on now, finds its client gone and never commits.
            hold.execute(text("SELECT pg_advisory_unlock_all()"))
            hold.commit()
        with engine.begin() as conn:
            for sql in DROP_HOLD:
                conn.execute(text(sql))

        deadline = time.monotonic() + 240
        while (history := _history(stack, sid, auth))[-1]["event_type"] != event_type:
            assert time.monotonic() < deadline, history[-1]
            time.sleep(1)
        run_events = [e for e in history if e["data"].get("flow_run_id") == row["flow_run_id"]]
        terminal = [e for e in history if e["event_type"].endswith((".completed", ".failed"))]
        assert [e["event_type"] for e in terminal] == [event_type]
        end: dict[str, Any] = terminal[0]["data"]
        if kind == "failed":
            assert end["step"] == 3 and end["error"] == str(row["error"])[:500], end
        assert end["flow_run_id"] == row["flow_run_id"] == created.json()["flow_run_id"]
        # From the reconciler, at the status commit's time; not the dead run's insert,
        # which would carry the moment it was made.
        assert datetime.fromisoformat(end[f"{kind}_at"]) == row["updated_at"]
        assert [e["id"] for e in history[: len(before)]] == [e["id"] for e in before]

        # The stream without Last-Event-ID: the latest operation, with the same ids.
        url = f"{stack.api_url}/api/v1/realtime/service-lifecycle/{sid}"
        streamed = []
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=60)) as client,
            connect_sse(client, "GET", url, headers=auth) as source,
        ):
            for sse in source.iter_sse():
                streamed.append({"id": int(sse.id), "event_type": sse.event, "data": sse.json()})
                if sse.event == event_type:
                    break
        # The API's announcement (step 1 ``queued``, published before the run had an id)
        # opens the operation; then exactly the run's events.
        queued = streamed[0]["data"]
        assert (queued["step"], queued["status"], queued["flow_run_id"]) == (1, "queued", None)
        assert streamed[1:] == run_events

        # Reconcilers again, two at once and with no grace at all: nothing more.
        sessions = sessionmaker(engine, expire_on_commit=False)
        results: list[list[int]] = []
        passes = [
            threading.Thread(target=lambda: results.append(announce_missing(
                sessions, EventPublisher(engine, None), grace=timedelta(0))[0]))
            for _ in range(2)
        ]  # fmt: skip
        for t in passes:
            t.start()
        for t in passes:
            t.join()
        assert results == [[], []]
        assert _history(stack, sid, auth) == history
        engine.dispose()
