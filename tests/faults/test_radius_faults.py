"""RADIUS faults: the RADIUS server stops answering during the provisioning test step,
and the NAS stops answering the suspension's CoA. Timeouts are transient: retried, then
failed with every completed step compensated. (A NAS that NAKs the CoA is in
tests/flows/test_suspend.py; a NAS silent on a Disconnect in tests/flows/test_terminate.py.)

RADIUS faults do not depend on the database backend: these run on SQLite only.
"""

from __future__ import annotations

import pytest

from fiberflow.core.db.models import Operation
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.flows.provision import provision
from fiberflow.flows.suspend import suspend
from tests.faults.helpers import (
    ATTEMPTS,
    assert_failed,
    audit,
    provisioned,
    quick_radius_timeouts,
    retry_attempts,
    rollback_notices,
)
from tests.fixtures.lifecycle import Lifecycle

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TIMEOUT_TEXT = "no reply after 1 tries of 0.3s"


def test_radius_timeout_in_the_test_step_is_retried_then_compensated(
    lifecycle: Lifecycle,
) -> None:
    quick_radius_timeouts(0.3)
    lifecycle.lab.radius.drop_requests = True
    sid = lifecycle.new_service()
    with pytest.raises(Exception, match="no reply"):
        provision(sid)
    events = assert_failed(lifecycle, sid, "provisioning", 5, f"radius: {TIMEOUT_TEXT}")
    tries = audit(lifecycle, sid, "radius", "Access-Request%")
    assert [(a.ok, a.output) for a in tries] == [(False, "timeout")] * ATTEMPTS
    assert retry_attempts(events)
    assert rollback_notices(events) == [
        "Removed the subscriber from RADIUS",
        "Removed the sub-interface for VLAN 100 on bng-1",
        "Removed ONT 0/1/3 0 from olt-1",
        "Released the IP address and VLAN",
    ]
    svc = lifecycle.service(sid)
    assert (svc.ip_address, svc.vlan, svc.ont_id) == (None, None, None)
    assert lifecycle.leftovers(sid, svc.radius_username) == {}
    assert not lifecycle.lab.nas.sessions  # nobody was ever authenticated


def test_nas_timeout_on_the_suspension_coa_rolls_the_walled_garden_back(
    lifecycle: Lifecycle,
) -> None:
    sid, user = provisioned(lifecycle)
    nas = lifecycle.lab.nas
    session_before = dict(nas.sessions[user].attributes)
    olt_before = lifecycle.lab.device("olt-1").state.dump()
    bng_before = lifecycle.lab.device("bng-1").state.dump()
    quick_radius_timeouts(0.3)
    nas.drop_requests = True

    lifecycle.begin(sid, Operation.SUSPENSION)
    with pytest.raises(Exception, match="no reply"):
        suspend(sid)
    events = assert_failed(lifecycle, sid, "suspension", 3, f"bng-1: {TIMEOUT_TEXT}")
    coas = audit(lifecycle, sid, "bng-1", "CoA-Request%")
    assert [(a.ok, a.output) for a in coas] == [(False, "timeout")] * ATTEMPTS
    assert retry_attempts(events)
    # The walled garden was entered (step 2), then undone: RADIUS group and BNG policies
    # are the plan's again, the session never changed, and the service keeps its parts.
    assert rollback_notices(events) == ["Restored the previous RADIUS group and policy"]
    assert RadiusStore(lifecycle.engine).get(user).groups == ("100M",)  # type: ignore[union-attr]
    assert lifecycle.lab.device("bng-1").state.dump() == bng_before
    assert lifecycle.lab.device("olt-1").state.dump() == olt_before
    assert nas.sessions[user].attributes == session_before
    svc = lifecycle.service(sid)
    assert None not in (svc.ip_address, svc.vlan, svc.ont_id)
