"""Termination against the lab, from ``active`` and from ``suspended``: nothing is left
on the devices, in RADIUS or in IPAM, and the state machine refuses a second one."""

from __future__ import annotations

import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from fiberflow.core.db.models import InvalidTransition, Operation
from fiberflow.devices.inventory import load_inventory
from fiberflow.events.schema import validate_event
from fiberflow.flows.provision import provision
from fiberflow.flows.suspend import suspend
from fiberflow.flows.terminate import terminate
from fiberflow.lab.lab_inventory import write_inventory
from fiberflow.tasks.runtime import reset_runtime
from tests.fixtures.lifecycle import Lifecycle


def _assert_terminated(lc: Lifecycle, sid: str, user: str, *, nas_answered: bool) -> None:
    svc = lc.service(sid)
    assert svc.status == "terminated", svc.error
    assert (svc.ip_address, svc.vlan, svc.ont_id) == (None, None, None)
    assert svc.ont_serial and svc.plan  # the row keeps its history
    disconnects = [r for r in lc.lab.nas.requests if r.kind == "disconnect" and r.username == user]
    assert [r.acked for r in disconnects] == ([True] if nas_answered else [])
    assert (user in lc.lab.nas.sessions) is not nas_answered
    events = [e for e in lc.events(sid) if e.data.get("flow_run_id") == svc.flow_run_id]
    for e in events:
        validate_event(e.event_type, e.data)
    progress = [e.data for e in events if e.event_type == "service.termination.progress"]
    assert [d["step"] for d in progress] == [1, 2, 3, 4, 5, 6]
    assert progress[1]["status"] == "disconnecting"
    assert [e.event_type for e in events][-1] == "service.termination.completed"


def _quick_radius_timeouts() -> None:
    """One 0.3 s try per RADIUS request from now on (the lab inventory, rewritten)."""
    path = os.environ["FIBERFLOW_INVENTORY"]
    inv = load_inventory(path)
    quick = inv.radius.model_copy(update={"timeout": 0.3, "retries": 0})
    write_inventory(inv.model_copy(update={"radius": quick}), path)
    reset_runtime()


def test_terminate_from_active_and_from_suspended_leaves_nothing(lifecycle: Lifecycle) -> None:
    active = lifecycle.new_service(pon_port="0/1/3")
    suspended = lifecycle.new_service(pon_port="0/1/4")
    # At once, as several workers would run them; each thread gets a copy of this
    # context, which holds the test's Prefect settings (the session's server).
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(contextvars.copy_context().run, provision, s)
                for s in (active, suspended)]  # fmt: skip
        for run in runs:
            run.result()
    users = {sid: lifecycle.service(sid).radius_username or "" for sid in (active, suspended)}
    keep = lifecycle.service(suspended)
    lifecycle.begin(suspended, Operation.SUSPENSION)
    suspend(suspended, hard=True)  # the ONT is deactivated: it must still be removed
    assert lifecycle.service(suspended).status == "suspended"

    lifecycle.begin(active, Operation.TERMINATION)
    assert terminate(active)["session"] == "session disconnected"
    _assert_terminated(lifecycle, active, users[active], nas_answered=True)
    # Only this service's parts went: the other one is untouched.
    olt = lifecycle.lab.device("olt-1").state.dump()
    assert [(o["serial"], o["active"]) for o in olt["onts"]] == [(keep.ont_serial, False)]
    assert [sp["vlan"] for sp in olt["service_ports"]] == [keep.vlan]
    subifs = lifecycle.lab.device("bng-1").state.dump()["subinterfaces"]
    assert [s["outer_vlan"] for s in subifs] == [keep.vlan]
    assert lifecycle.leftovers(active, users[active]).keys() <= {"olt-1", "bng-1"}

    with pytest.raises(InvalidTransition):
        lifecycle.begin(active, Operation.TERMINATION)

    # A NAS that does not answer must not block removal: the rows and the sub-interface
    # going away end the session anyway.
    _quick_radius_timeouts()
    lifecycle.lab.nas.drop_requests = True
    lifecycle.begin(suspended, Operation.TERMINATION)
    assert terminate(suspended)["session"] == "NAS did not answer the disconnect"
    _assert_terminated(lifecycle, suspended, users[suspended], nas_answered=False)
    for sid, user in users.items():
        assert lifecycle.leftovers(sid, user) == {}
    with pytest.raises(InvalidTransition):
        lifecycle.begin(suspended, Operation.TERMINATION)
