"""Two operations raced on one active service at the flow level: a suspension and a
termination claim the service at the same moment. Exactly one claim wins (the status
machine, or the row version on PostgreSQL, refuses the other) and only the winner's
flow runs; the loser touches nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError

from fiberflow.core.db.models import InvalidTransition, Operation
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.flows.suspend import suspend
from fiberflow.flows.terminate import terminate
from tests.faults.helpers import assert_completed, in_thread, lock_waiters, provisioned
from tests.fixtures.lifecycle import Lifecycle

LOCK_ROW = text("SELECT 1 FROM service_instances WHERE id = :id FOR UPDATE")
FLOWS: dict[Operation, Callable[[str], object]] = {
    Operation.SUSPENSION: suspend,
    Operation.TERMINATION: terminate,
}


def test_suspend_and_terminate_raced_one_wins(lifecycle: Lifecycle) -> None:
    sid, user = provisioned(lifecycle)
    provisioning_events = len(lifecycle.events(sid))
    barrier = threading.Barrier(2)
    refused: dict[Operation, BaseException] = {}

    def claim_then_run(op: Operation) -> object:
        barrier.wait()
        try:
            lifecycle.begin(sid, op)
        except (InvalidTransition, StaleDataError) as exc:
            refused[op] = exc
            return None
        return FLOWS[op](sid)

    postgres = lifecycle.engine.dialect.name == "postgresql"
    with lifecycle.engine.connect() as conn:
        if postgres:
            # Hold the row until both claims have read it and wait to write it: a real
            # tie, which the row version settles (SQLite's write lock serializes them).
            conn.execute(LOCK_ROW, {"id": sid})
        runs = {op: in_thread(claim_then_run, op) for op in FLOWS}
        deadline = time.monotonic() + 30
        while postgres and lock_waiters(conn) < 2:
            assert time.monotonic() < deadline, "the claims never reached the row"
            time.sleep(0.02)
        conn.rollback()
    results = {op: run() for op, run in runs.items()}

    assert len(refused) == 1, refused
    (loser,) = refused
    assert isinstance(refused[loser], StaleDataError if postgres else InvalidTransition)
    (winner,) = set(FLOWS) - {loser}
    assert results[loser] is None and results[winner] is not None
    done = "suspended" if winner is Operation.SUSPENSION else "terminated"
    assert_completed(lifecycle, sid, winner.value, done)

    # Only the winner's events follow the provisioning's, from one flow run.
    later = lifecycle.events(sid)[provisioning_events:]
    assert {e.data["operation"] for e in later} == {winner.value}
    assert len({e.data["flow_run_id"] for e in later}) == 1
    # Only the winner's request reached the NAS, and the devices show only its work.
    nas_kinds = [r.kind for r in lifecycle.lab.nas.requests if r.username == user]
    if winner is Operation.SUSPENSION:
        assert nas_kinds == ["coa"]
        assert RadiusStore(lifecycle.engine).get(user).groups == ("suspended",)  # type: ignore[union-attr]
        assert len(lifecycle.lab.device("olt-1").state.dump()["onts"]) == 1
    else:
        assert nas_kinds == ["disconnect"]
        assert lifecycle.leftovers(sid, user) == {}
