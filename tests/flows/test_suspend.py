"""Suspension against the lab: walled garden in RADIUS and on the BNG, CoA to the NAS;
compensation when the NAS, the OLT or the database refuses; the same end state when
run twice. Resumption and hard suspension round trips are in test_resume.py."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from fiberflow.core.db.models import Operation, RadCheck, RadReply, RadUserGroup
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.events.schema import validate_event
from fiberflow.flows.provision import provision
from fiberflow.flows.suspend import suspend
from tests.fixtures.lifecycle import Lifecycle

WALLED = "WALLED-GARDEN"
PLAN_POLICIES = ("PLAN-100M-IN", "PLAN-100M-OUT")
ROWS = {"radcheck": 1, "radreply": 2, "radusergroup": 1}  # password; IP + netmask; group


def _provisioned(lc: Lifecycle) -> tuple[str, str]:
    sid = lc.new_service()
    provision(sid)
    svc = lc.service(sid)
    assert svc.status == "active", svc.error
    assert svc.radius_username is not None
    return sid, svc.radius_username


def _policies(lc: Lifecycle) -> list[tuple[str | None, str | None]]:
    subifs = lc.lab.device("bng-1").state.dump()["subinterfaces"]
    return [(s["policy_in"], s["policy_out"]) for s in subifs]


def _rows(lc: Lifecycle, username: str) -> dict[str, int]:
    with lc.engine.connect() as conn:
        return {
            m.__tablename__: conn.scalar(
                select(func.count()).select_from(m).where(m.username == username)
            )
            or 0
            for m in (RadCheck, RadReply, RadUserGroup)
        }


def _operation_events(lc: Lifecycle, sid: str, run_id: str | None) -> list[tuple[str, dict]]:
    events = [e for e in lc.events(sid) if e.data.get("flow_run_id") == run_id]
    for e in events:
        validate_event(e.event_type, e.data)
    return [(e.event_type, e.data) for e in events]


def _back_to_active(lc: Lifecycle, sid: str) -> None:
    """Put a failed service back in service by hand (an operator's repair)."""
    with lc.engine.begin() as conn:
        conn.execute(
            text("UPDATE service_instances SET status = 'active', error = NULL WHERE id = :id"),
            {"id": sid},
        )


def _assert_rolled_back(lc: Lifecycle, sid: str, user: str, step: int, needle: str) -> None:
    svc = lc.service(sid)
    assert svc.status == "failed"
    assert needle in (svc.error or ""), svc.error
    # Compensation: the subscriber keeps its plan everywhere, and its ONT.
    assert RadiusStore(lc.engine).get(user).groups == ("100M",)  # type: ignore[union-attr]
    assert _policies(lc) == [PLAN_POLICIES]
    assert [o["active"] for o in lc.lab.device("olt-1").state.dump()["onts"]] == [True]
    # The IP, VLAN and ONT stay: a failed suspension does not tear the service down.
    assert None not in (svc.ip_address, svc.vlan, svc.ont_id)
    assert _rows(lc, user) == ROWS
    events = _operation_events(lc, sid, svc.flow_run_id)
    statuses = [d.get("status") for t, d in events if t.endswith(".progress")]
    assert "rolled_back" in statuses and "failed" in statuses
    assert events[-1][0] == "service.suspension.failed"
    assert events[-1][1]["step"] == step
    assert needle in events[-1][1]["error"]
    assert [t for t, _ in events].count("service.suspension.failed") == 1


def _refuse_suspended_status(lc: Lifecycle) -> None:
    """A real database fault: the row refuses to become ``suspended``."""
    with lc.engine.begin() as conn:
        if lc.engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_suspended BEFORE UPDATE OF status ON service_instances "
                "WHEN NEW.status = 'suspended' BEGIN SELECT RAISE(ABORT, 'row refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_suspended() RETURNS trigger AS $$ BEGIN "
                "IF NEW.status = 'suspended' THEN RAISE EXCEPTION 'row refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_suspended BEFORE UPDATE ON service_instances "
                "FOR EACH ROW EXECUTE FUNCTION refuse_suspended()"
            )


def _drop_refusal(lc: Lifecycle) -> None:
    with lc.engine.begin() as conn:
        if lc.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER refuse_suspended")
        else:
            conn.exec_driver_sql("DROP TRIGGER refuse_suspended ON service_instances")


def test_suspension_rolls_back_when_it_fails_and_twice_is_the_same(lifecycle: Lifecycle) -> None:
    """One subscriber: three failed suspensions (each compensated, the row put back to
    ``active`` by hand), then a good one, then the same one again."""
    sid, user = _provisioned(lifecycle)
    nas = lifecycle.lab.nas
    assert user in nas.sessions  # the provisioning test step authenticated it
    assert _rows(lifecycle, user) == ROWS

    # 1. The NAS refuses the CoA with a cause other than "no session".
    nas.nak_users[user] = 401  # Unsupported-Attribute
    lifecycle.begin(sid, Operation.SUSPENSION)
    with pytest.raises(Exception, match="CoA refused"):
        suspend(sid)
    _assert_rolled_back(lifecycle, sid, user, 3, "CoA refused")
    del nas.nak_users[user]

    # 2. Hard: the CoA was acknowledged, then the OLT refuses to deactivate the ONT.
    #    The step cleans its own half-done work: the session gets its plan back.
    _back_to_active(lifecycle, sid)
    olt = lifecycle.lab.device("olt-1")
    olt.faults.update(error_replies={r"^ont deactivate": "Failure: The ONT is busy"})
    lifecycle.begin(sid, Operation.SUSPENSION)
    with pytest.raises(Exception, match="ONT is busy"):
        suspend(sid, hard=True)
    _assert_rolled_back(lifecycle, sid, user, 3, "ONT is busy")
    walled, restored = nas.requests[-2:]
    assert f"ip:sub-qos-policy-in={WALLED}" in walled.attributes["Cisco-AVPair"]
    assert "ip:sub-qos-policy-in=PLAN-100M-IN" in restored.attributes["Cisco-AVPair"]
    assert restored.acked
    olt.faults.clear()

    # 3. Hard, every device step done, then the row refuses the new status: the ONT is
    #    activated again and the session restored (rollback hooks, latest step first).
    _back_to_active(lifecycle, sid)
    _refuse_suspended_status(lifecycle)
    lifecycle.begin(sid, Operation.SUSPENSION)
    with pytest.raises(Exception, match="row refused"):
        suspend(sid, hard=True)
    _assert_rolled_back(lifecycle, sid, user, 4, "row refused")
    assert "ip:sub-qos-policy-in=PLAN-100M-IN" in nas.requests[-1].attributes["Cisco-AVPair"]
    notices = [d["message"] for t, d in _operation_events(lifecycle, sid,
               lifecycle.service(sid).flow_run_id) if d.get("status") == "rolled_back"]  # fmt: skip
    assert notices == [
        "Activated the ONT again; Sent the previous attributes to the session (CoA)",
        "Restored the previous RADIUS group and policy",
    ]
    _drop_refusal(lifecycle)
    _back_to_active(lifecycle, sid)

    # 4. A good suspension: walled garden in RADIUS and on the BNG, CoA acknowledged.
    seen = len(nas.requests)
    lifecycle.begin(sid, Operation.SUSPENSION)
    result = suspend(sid)
    svc = lifecycle.service(sid)
    assert svc.status == "suspended", svc.error
    assert result["session"] == "session updated"
    assert RadiusStore(lifecycle.engine).get(user).groups == ("suspended",)  # type: ignore[union-attr]
    assert _policies(lifecycle) == [(WALLED, WALLED)]
    coas = [r for r in nas.requests[seen:] if r.kind == "coa"]
    assert len(coas) == 1 and coas[0].username == user and coas[0].acked
    assert f"ip:sub-qos-policy-in={WALLED}" in coas[0].attributes["Cisco-AVPair"]
    assert nas.sessions[user].attributes["Cisco-Account-Info"] == [f"A{WALLED}"]
    # Soft suspension: the ONT stays up.
    assert [o["active"] for o in lifecycle.lab.device("olt-1").state.dump()["onts"]] == [True]

    events = _operation_events(lifecycle, sid, svc.flow_run_id)
    progress = [d for t, d in events if t == "service.suspension.progress"]
    assert [d["step"] for d in progress] == [1, 2, 3, 4]
    assert progress[-1]["status"] == "completed"
    assert events[-1][0] == "service.suspension.completed"
    assert [t for t, _ in events].count("service.suspension.completed") == 1

    # Run it again over a row put back in ``suspending``: same end state, no new rows.
    with lifecycle.engine.begin() as conn:
        conn.execute(
            text("UPDATE service_instances SET status = 'suspending' WHERE id = :id"), {"id": sid}
        )
    olt_before = lifecycle.lab.device("olt-1").state.dump()
    bng_before = lifecycle.lab.device("bng-1").state.dump()
    suspend(sid)
    again = lifecycle.service(sid)
    assert again.status == "suspended", again.error
    assert again.flow_run_id != svc.flow_run_id
    assert RadiusStore(lifecycle.engine).get(user).groups == ("suspended",)  # type: ignore[union-attr]
    assert _rows(lifecycle, user) == ROWS
    assert lifecycle.lab.device("olt-1").state.dump() == olt_before
    assert lifecycle.lab.device("bng-1").state.dump() == bng_before
    second = _operation_events(lifecycle, sid, again.flow_run_id)
    assert second[-1][0] == "service.suspension.completed"
