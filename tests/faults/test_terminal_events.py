"""An operation whose run committed the service's end status but never stored its
``completed`` / ``failed`` event (the process died in between, or the event store
refused the insert) gets that event from the crash reconciler: exactly once, however
many reconcilers look, and never for an operation that ended normally.

The flows run for real against the lab; the lost event is a real database fault (a
trigger refuses the terminal event's insert), so the run's own hook really failed to
publish it. The whole-stack case, a run SIGKILLed while its failed event is being
stored, is tests/faults/test_terminal_event_kill.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.migrate import upgrade
from fiberflow.core.db.models import EventLog, Operation, ServiceInstance
from fiberflow.events import schema
from fiberflow.events.publisher import EventPublisher
from fiberflow.events.schema import validate_event
from fiberflow.flows.plan_change import change_plan
from fiberflow.flows.provision import provision
from fiberflow.stack.reconciler import announce, announce_missing, unannounced
from tests.faults.helpers import lock_waiters
from tests.fixtures.databases import schema_reset
from tests.fixtures.lifecycle import TENANT, Lifecycle

NOW = timedelta(0)  # the reconciler's grace, passed: the run is known to be gone
TERMINAL = (".completed", ".failed")


@contextmanager
def event_store_refuses(engine: Engine, event_type: str) -> Iterator[None]:
    """The database refuses to store ``event_type`` events while inside."""
    if engine.dialect.name == "postgresql":
        create = [
            "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'event store refused the insert'; END $$",
            "CREATE TRIGGER refuse_event BEFORE INSERT ON event_log FOR EACH ROW "
            f"WHEN (NEW.event_type = '{event_type}') EXECUTE FUNCTION refuse_event()",
        ]
        drop = ["DROP TRIGGER refuse_event ON event_log", "DROP FUNCTION refuse_event()"]
    else:
        create = [
            "CREATE TRIGGER refuse_event BEFORE INSERT ON event_log "
            f"WHEN NEW.event_type = '{event_type}' "
            "BEGIN SELECT RAISE(ABORT, 'event store refused the insert'); END"
        ]
        drop = ["DROP TRIGGER refuse_event"]
    with engine.begin() as conn:
        for sql in create:
            conn.execute(text(sql))
    try:
        yield
    finally:
        with engine.begin() as conn:
            for sql in drop:
                conn.execute(text(sql))


def _terminal(events: list[EventLog]) -> list[EventLog]:
    return [e for e in events if e.event_type.endswith(TERMINAL)]


def _ids(events: list[EventLog]) -> list[int]:
    return [e.id for e in events]


def _utc(at: datetime) -> datetime:
    # SQLite hands back naive UTC, PostgreSQL an aware time in the session's zone.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _reconciler(lc: Lifecycle) -> tuple[sessionmaker[Session], EventPublisher]:
    # As in an API process: its own sessions and publisher (no Redis: the log is enough).
    return sessionmaker(lc.engine, expire_on_commit=False), EventPublisher(lc.engine, None)


def test_normally_ended_operations_get_no_second_terminal_event(lifecycle: Lifecycle) -> None:
    done = lifecycle.new_service()
    provision(done)
    failed = lifecycle.new_service()
    lifecycle.lab.device("olt-1").faults.update(
        error_replies={r"^service-port": "Failure: Conflicted service virtual port index"}
    )
    with pytest.raises(Exception, match="Conflicted"):
        provision(failed)
    assert (lifecycle.service(done).status, lifecycle.service(failed).status) == (
        "active",
        "failed",
    )
    before = {sid: _ids(lifecycle.events(sid)) for sid in (done, failed)}
    assert [len(_terminal(lifecycle.events(sid))) for sid in (done, failed)] == [1, 1]

    sessions, publisher = _reconciler(lifecycle)
    assert unannounced(sessions, grace=NOW) == []
    for _ in range(2):
        assert announce_missing(sessions, publisher, grace=NOW)[0] == []
    assert {sid: _ids(lifecycle.events(sid)) for sid in (done, failed)} == before


def test_lost_failed_event_is_published_once_with_the_stored_error_and_step(
    lifecycle: Lifecycle,
) -> None:
    sid = lifecycle.new_service()
    lifecycle.lab.device("olt-1").faults.update(
        error_replies={r"^service-port": "Failure: Conflicted service virtual port index"}
    )
    with (
        event_store_refuses(lifecycle.engine, "service.provisioning.failed"),
        pytest.raises(Exception, match="Conflicted"),
    ):
        provision(sid)
    svc = lifecycle.service(sid)
    assert svc.status == "failed" and "Conflicted" in (svc.error or "")
    events = lifecycle.events(sid)
    assert _terminal(events) == [], "the run's own failed event was stored after all"
    # The run's step-3 failure and its compensation notices did get through.
    assert [e.data["step"] for e in events if e.data.get("status") == "failed"] == [3]

    sessions, publisher = _reconciler(lifecycle)
    # Just ended: the run may still be about to publish; the reconciler waits.
    assert announce_missing(sessions, publisher)[0] == []
    published, _ = announce_missing(sessions, publisher, grace=NOW)
    assert len(published) == 1

    after = lifecycle.events(sid)
    assert _ids(after) == [*_ids(events), published[0]]
    last = after[-1]
    assert last.event_type == "service.provisioning.failed"
    validate_event(last.event_type, last.data)
    assert last.operation_id == svc.flow_run_id == last.data["flow_run_id"]
    assert last.data["step"] == 3
    assert last.data["error"] == (svc.error or "")[:500]
    failed_at = schema.FailedEvent.model_validate(last.data).failed_at
    assert failed_at == _utc(svc.updated_at)

    # Again, and again from a second replica: nothing more.
    assert announce_missing(sessions, publisher, grace=NOW)[0] == []
    assert announce_missing(*_reconciler(lifecycle), grace=NOW)[0] == []
    # The run itself, alive after all, publishing late: its event is not stored.
    late = schema.failed(Operation.PROVISIONING, service_id=sid, tenant_id=svc.tenant_id,
                         operation_id=str(last.operation_id), step=3, error="late")  # fmt: skip
    assert publisher.publish(late) is None
    assert _ids(lifecycle.events(sid)) == _ids(after)


def test_lost_completed_event_is_published_once_at_the_completion_time(
    lifecycle: Lifecycle,
) -> None:
    sid = lifecycle.new_service()
    with event_store_refuses(lifecycle.engine, "service.provisioning.completed"):
        provision(sid)
    svc = lifecycle.service(sid)
    assert svc.status == "active"
    events = lifecycle.events(sid)
    assert _terminal(events) == []
    # The final step's progress came before the status commit; only the end is missing.
    assert events[-1].data["status"] == "completed" and events[-1].data["step"] == 6

    sessions, publisher = _reconciler(lifecycle)
    (item,) = unannounced(sessions, grace=NOW)
    assert (item.service_id, item.flow_run_id) == (sid, svc.flow_run_id)
    published, _ = announce_missing(sessions, publisher, grace=NOW)
    assert len(published) == 1
    last = lifecycle.events(sid)[-1]
    assert (last.id, last.event_type) == (published[0], "service.provisioning.completed")
    validate_event(last.event_type, last.data)
    completed_at = schema.CompletedEvent.model_validate(last.data).completed_at
    assert completed_at == _utc(svc.updated_at)
    assert announce_missing(sessions, publisher, grace=NOW)[0] == []
    assert len(_terminal(lifecycle.events(sid))) == 1


def test_lost_failed_event_of_a_restored_plan_change_is_failed_not_completed(
    lifecycle: Lifecycle,
) -> None:
    # A failed plan change puts the service back to active (not failed): the row's
    # stored error is what tells the reconciler the operation failed.
    sid = lifecycle.new_service(plan="100M")
    provision(sid)
    lifecycle.lab.device("bng-1").faults.update(
        error_replies={
            r"^service-policy input PLAN-500M-IN": "% policy map PLAN-500M-IN not configured"
        }
    )
    lifecycle.begin(sid, Operation.PLAN_CHANGE)
    with (
        event_store_refuses(lifecycle.engine, "service.plan_change.failed"),
        pytest.raises(Exception, match="rejected"),
    ):
        change_plan(sid, "500M")
    svc = lifecycle.service(sid)
    assert (svc.status, svc.plan) == ("active", "100M") and "rejected" in (svc.error or "")
    run = [e for e in lifecycle.events(sid) if e.operation_id == svc.flow_run_id]
    assert _terminal(run) == []

    published, _ = announce_missing(*_reconciler(lifecycle), grace=NOW)
    assert len(published) == 1
    last = lifecycle.events(sid)[-1]
    assert (last.id, last.event_type) == (published[0], "service.plan_change.failed")
    validate_event(last.event_type, last.data)
    assert last.data["step"] == 3 and last.data["error"] == (svc.error or "")[:500]
    assert announce_missing(*_reconciler(lifecycle), grace=NOW)[0] == []


def test_two_reconcilers_that_both_saw_it_missing_publish_one_event(
    lifecycle: Lifecycle,
) -> None:
    sid = lifecycle.new_service()
    with event_store_refuses(lifecycle.engine, "service.provisioning.completed"):
        provision(sid)
    first, second = _reconciler(lifecycle), _reconciler(lifecycle)
    seen_by_first = unannounced(first[0], grace=NOW)
    seen_by_second = unannounced(second[0], grace=NOW)
    assert seen_by_first == seen_by_second and len(seen_by_first) == 1
    ids = [announce(*first, seen_by_first[0]), announce(*second, seen_by_second[0])]
    assert ids[0] is not None and ids[1] is None
    assert [e.id for e in _terminal(lifecycle.events(sid))] == [ids[0]]


# -- PostgreSQL: two reconcilers truly at once ---------------------------------------
@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    schema_reset(pg_database)
    upgrade(pg_database)
    engine = make_engine(pg_database)
    yield engine
    engine.dispose()


def _ended_without_event(engine: Engine) -> tuple[str, str]:
    """A service a provisioning run took to ``failed`` and whose failed event it never
    stored: the run's step events, then the row (as a killed run leaves them)."""
    run = str(uuid.uuid4())
    with Session(engine) as s, s.begin():
        row = ServiceInstance(tenant_id=TENANT, customer_ref="cust-race", plan="100M",
                              olt="olt-1", pon_port="0/1/3",
                              ont_serial="48575443AABB0001")  # fmt: skip
        row.begin(Operation.PROVISIONING)
        row.flow_run_id = run
        s.add(row)
        s.flush()
        sid = row.id
    pub = EventPublisher(engine, None)
    for step, status in ((1, "validating"), (2, "allocating"), (2, "failed")):
        pub.publish(schema.progress(Operation.PROVISIONING, service_id=sid, tenant_id=TENANT,
                                    operation_id=run, step=step, total_steps=6, status=status,
                                    message=status))  # fmt: skip
    with Session(engine) as s, s.begin():
        failing = s.get(ServiceInstance, sid)
        assert failing is not None
        failing.fail("no free VLAN on bng-1")
    return sid, run


@pytest.mark.postgres
def test_reconcilers_racing_on_postgresql_store_one_event(pg_engine: Engine) -> None:
    sid, run = _ended_without_event(pg_engine)
    results: list[list[int]] = []

    def reconcile() -> None:
        sessions = sessionmaker(pg_engine, expire_on_commit=False)
        results.append(announce_missing(sessions, EventPublisher(pg_engine, None), grace=NOW)[0])

    with pg_engine.connect() as conn:
        # Hold the service's event lock until both reconcilers have found the event
        # missing and wait to store it: a real tie at the insert.
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"),
                     {"k": f"fiberflow.events:{sid}"})  # fmt: skip
        threads = [threading.Thread(target=reconcile) for _ in range(2)]
        for t in threads:
            t.start()
        while lock_waiters(conn) < 2:
            assert all(t.is_alive() for t in threads), results
            time.sleep(0.05)
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
        conn.commit()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 1], results
    with Session(pg_engine) as s:
        events = list(s.scalars(select(EventLog).where(EventLog.operation_id == run)))
    (failed,) = _terminal(events)
    assert failed.event_type == "service.provisioning.failed"
    assert failed.data["step"] == 2 and failed.data["error"] == "no free VLAN on bng-1"


@pytest.mark.postgres
def test_later_passes_still_see_operations_that_end_after_the_first(pg_engine: Engine) -> None:
    sessions = sessionmaker(pg_engine, expire_on_commit=False)
    publisher = EventPublisher(pg_engine, None)
    nothing, since = announce_missing(sessions, publisher, grace=NOW)
    assert nothing == [] and since is not None
    sid, run = _ended_without_event(pg_engine)
    published, _ = announce_missing(sessions, publisher, grace=NOW, since=since)
    assert len(published) == 1
    with Session(pg_engine) as s:
        (event,) = _terminal(list(s.scalars(select(EventLog).where(EventLog.service_id == sid))))
    assert (event.id, event.operation_id) == (published[0], run)
