"""PostgreSQL connections dropped while a provisioning is configuring the OLT.

Every backend of the database but the test's own is terminated at once: the pooled
idle connections of the run (found dead by pool_pre_ping), the lab RADIUS server's, and
one caught inside a transaction: the run's UPDATE of its service row, held back by a
row lock the test takes, so the drop lands mid-statement every time.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from fiberflow.flows.provision import provision
from tests.faults.helpers import (
    assert_completed,
    assert_failed,
    audit,
    in_thread,
    lock_waiters,
    retry_attempts,
    rollback_notices,
)
from tests.fixtures.lifecycle import Lifecycle

# A dropped server connection is a PostgreSQL fault; SQLite has no server to lose.
pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

TERMINATE_OTHERS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_connections_dropped_at_step_3_are_survived(lifecycle: Lifecycle) -> None:
    olt = lifecycle.lab.device("olt-1")
    olt.faults.update(latency=0.5, latency_match=r"^(ont add|service-port )")
    sid = lifecycle.new_service()
    run = in_thread(provision, sid)
    deadline = time.monotonic() + 60
    while not audit(lifecycle, sid, "olt-1", "ont add%"):  # step 3, mid-way
        assert time.monotonic() < deadline, "the run never reached the OLT"
        time.sleep(0.02)
    with lifecycle.engine.connect() as conn:
        conn.execute(text("SELECT 1 FROM service_instances WHERE id = :id FOR UPDATE"),
                     {"id": sid})  # fmt: skip
        while not lock_waiters(conn):  # the run wants to record its ONT
            assert time.monotonic() < deadline, "the run never wrote its service row"
            time.sleep(0.02)
        killed = conn.execute(TERMINATE_OTHERS).scalars().all()
        conn.rollback()
    assert len(killed) >= 2 and all(killed)
    run()

    events = assert_completed(lifecycle, sid, "provisioning", "active")
    # The step that lost its connection mid-statement removed the ONT it had added and
    # ran again; no completed step was undone.
    assert [a.ok for a in audit(lifecycle, sid, "olt-1", "ont add%")] == [True, True]
    assert [a.step for a in audit(lifecycle, sid, "olt-1", "ont delete%")] == ["configuring"]
    retry_attempts(events)
    assert not any(e.data.get("status") == "rolled_back" for e in events)
    svc = lifecycle.service(sid)
    assert None not in (svc.ip_address, svc.vlan, svc.ont_id)
    dump = olt.state.dump()
    assert [o["serial"] for o in dump["onts"]] == [svc.ont_serial]
    assert [sp["vlan"] for sp in dump["service_ports"]] == [svc.vlan]
    held = lifecycle.leftovers(sid, svc.radius_username)
    assert held["ip_allocations"] == held["vlan_allocations"] == 1


def test_a_refused_service_row_after_the_olt_work_leaves_no_ont(lifecycle: Lifecycle) -> None:
    """The database refuses to record the ONT (a permanent fault): the step removes the
    ONT it added (its own rollback hook never runs), the rest is rolled back."""
    with lifecycle.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse_ont() RETURNS trigger AS $$ BEGIN "
            "IF NEW.ont_id IS NOT NULL THEN RAISE EXCEPTION 'ont_id refused'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_ont BEFORE UPDATE ON service_instances "
            "FOR EACH ROW EXECUTE FUNCTION refuse_ont()"
        )
    sid = lifecycle.new_service()
    with pytest.raises(Exception, match="ont_id refused"):
        provision(sid)
    events = assert_failed(lifecycle, sid, "provisioning", 3, "ont_id refused")
    assert [a.ok for a in audit(lifecycle, sid, "olt-1", "ont delete%")] == [True]
    assert rollback_notices(events) == ["Released the IP address and VLAN"]
    svc = lifecycle.service(sid)
    assert lifecycle.leftovers(sid, svc.radius_username) == {}


def test_an_event_whose_connection_drops_is_still_stored(lifecycle: Lifecycle) -> None:
    bng = lifecycle.lab.device("bng-1")
    bng.faults.update(latency=0.5, latency_match=r"^ip address ")
    sid = lifecycle.new_service()
    run = in_thread(provision, sid)
    deadline = time.monotonic() + 60
    while not audit(lifecycle, sid, "bng-1", "encapsulation%"):  # step 3, on the BNG
        assert time.monotonic() < deadline, "the run never reached the BNG"
        time.sleep(0.02)
    with lifecycle.engine.connect() as conn:
        # The service's event lock: the next event (step 4 starting) waits to be stored.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                     {"key": f"fiberflow.events:{sid}"})  # fmt: skip
        while not lock_waiters(conn):
            assert time.monotonic() < deadline, "no event waited for the lock"
            time.sleep(0.02)
        conn.execute(TERMINATE_OTHERS)
        conn.rollback()
    run()
    events = assert_completed(lifecycle, sid, "provisioning", "active")
    assert [e.data["step"] for e in events if e.data.get("status") == "activating"] == [4]
