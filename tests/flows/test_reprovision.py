"""Reprovisioning against the lab: an in-sync service is left alone; drift made behind
the system's back (lab admin, SQL) is named and repaired."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import delete, select

from fiberflow.core.db.models import RadCheck, RadReply, RadUserGroup
from fiberflow.events.schema import validate_event
from fiberflow.flows.provision import provision
from fiberflow.flows.reprovision import reprovision
from tests.fixtures.lifecycle import Lifecycle


def _devices(lc: Lifecycle) -> dict[str, Any]:
    """What the lab devices hold, without what a re-add legitimately renumbers."""
    olt = lc.lab.device("olt-1").state.dump()
    return {
        "onts": [{k: v for k, v in o.items() if k != "online"} for o in olt["onts"]],
        "service_ports": sorted(
            (sp["fsp"], sp["ont_id"], sp["vlan"], sp["gem_port"], sp["user_vlan"])
            for sp in olt["service_ports"]
        ),
        "bng": lc.lab.device("bng-1").state.dump()["subinterfaces"],
    }


def _radius(lc: Lifecycle) -> list[tuple[str, ...]]:
    """Every RADIUS row of every subscriber, comparable."""
    queries = {
        "radcheck": select(RadCheck.username, RadCheck.attribute, RadCheck.op, RadCheck.value),
        "radreply": select(RadReply.username, RadReply.attribute, RadReply.op, RadReply.value),
        "radusergroup": select(
            RadUserGroup.username, RadUserGroup.groupname, RadUserGroup.priority
        ),
    }
    with lc.engine.connect() as conn:
        return sorted(
            (table, *(str(v) for v in row))
            for table, q in queries.items()
            for row in conn.execute(q)
        )


def test_reprovision_leaves_in_sync_alone_and_repairs_drift(lifecycle: Lifecycle) -> None:
    sids = [lifecycle.new_service(pon_port=f"0/1/{p}") for p in (3, 4)]
    # At once, as several workers would run them; each thread gets a copy of this
    # context, which holds the test's Prefect settings (the session's server).
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(contextvars.copy_context().run, provision, sid) for sid in sids]
        for run in runs:
            run.result()
    clean, drifted = (lifecycle.service(sid) for sid in sids)
    devices_before, radius_before = _devices(lifecycle), _radius(lifecycle)

    # In sync: nothing changes, not even a command that rewrites the same value.
    result = reprovision(clean.id)
    assert (result["result"], result["diff"]) == ("in_sync", "")
    assert lifecycle.service(clean.id).status == "active"
    assert (_devices(lifecycle), _radius(lifecycle)) == (devices_before, radius_before)
    svc = lifecycle.service(clean.id)
    events = [e for e in lifecycle.events(clean.id) if e.data.get("flow_run_id") == svc.flow_run_id]
    for e in events:
        validate_event(e.event_type, e.data)
    progress = [e.data["step"] for e in events if e.event_type.endswith(".progress")]
    assert progress == [1, 2, 3]
    assert events[-1].event_type == "service.reprovisioning.completed"

    # Drift behind the system's back on all three systems.
    assert drifted.ont_id is not None and drifted.vlan is not None
    assert drifted.ont_serial is not None
    lab = lifecycle.lab
    assert lab.device("olt-1").admin("delete_ont", fsp="0/1/4", ont_id=drifted.ont_id)["deleted"]
    subif = f"{lab.inventory.bngs[0].uplink}.{drifted.vlan}"
    assert lab.device("bng-1").admin("set_policy", interface=subif, direction="input",
                                     policy="PLAN-1G-IN")["ok"]  # fmt: skip
    with lifecycle.engine.begin() as conn:
        conn.execute(delete(RadUserGroup).where(RadUserGroup.username == drifted.radius_username))
    assert _devices(lifecycle) != devices_before

    result = reprovision(drifted.id)
    assert result["result"] == "repaired"
    diff = result["diff"]
    assert "olt.ont: expected " + drifted.ont_serial + ", found absent" in diff
    assert "bng.policy_in: expected PLAN-100M-IN, found PLAN-1G-IN" in diff
    assert "radius.group: expected 100M, found None" in diff
    assert lifecycle.service(drifted.id).status == "active"
    assert (_devices(lifecycle), _radius(lifecycle)) == (devices_before, radius_before)
    assert {lifecycle.service(sid).status for sid in sids} == {"active"}
