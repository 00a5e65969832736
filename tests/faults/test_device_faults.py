"""Device faults during a provisioning: a slow OLT, a BNG that refuses our login, a BNG
session that drops mid-config. Each run ends completed, or failed with every completed
step compensated and nothing left on the devices, in RADIUS or in IPAM.

Device faults do not depend on the database backend: these run on SQLite only (the
backends are covered by tests/flows); an OLT error reply and an ONT that never comes
online are in tests/flows/test_provision_failures.py.
"""

from __future__ import annotations

import pytest

from fiberflow.flows.provision import provision
from tests.faults.helpers import (
    ATTEMPTS,
    assert_completed,
    assert_failed,
    audit,
    quick_device_timeout,
    retry_attempts,
    rollback_notices,
    statuses,
    when,
)
from tests.fixtures.lifecycle import Lifecycle

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

LATENCY = 1.0  # well under the 5 s device timeout of the lifecycle fixture


def test_olt_latency_spike_is_ridden_out(lifecycle: Lifecycle) -> None:
    olt = lifecycle.lab.device("olt-1")
    # The OLT takes a second over each configuration line (ONT, service-port).
    olt.faults.update(latency=LATENCY, latency_match=r"^(ont add|service-port )")
    sid = lifecycle.new_service()
    provision(sid)
    events = assert_completed(lifecycle, sid, "provisioning", "active")
    assert "retrying" not in statuses(events)  # slow is not failed
    slow = audit(lifecycle, sid, "olt-1", "ont add%") + audit(lifecycle, sid, "olt-1",
                                                             "service-port%")  # fmt: skip
    assert len(slow) == 2 and all(a.ok for a in slow)
    assert all(a.duration_ms >= LATENCY * 1000 for a in slow)  # the spike did happen
    svc = lifecycle.service(sid)
    dump = olt.state.dump()
    assert [o["serial"] for o in dump["onts"]] == [svc.ont_serial]
    assert [sp["vlan"] for sp in dump["service_ports"]] == [svc.vlan]


def test_bng_auth_failure_fails_at_once_and_is_compensated(lifecycle: Lifecycle) -> None:
    bng = lifecycle.lab.device("bng-1")
    bng.faults.update(auth_failure=True)
    sid = lifecycle.new_service()
    with pytest.raises(Exception, match="authentication failed"):
        provision(sid)
    events = assert_failed(lifecycle, sid, "provisioning", 3, "bng-1: authentication failed")
    # DeviceAuthError is permanent: one login, no retry, no second try to clean up.
    assert "retrying" not in statuses(events)
    logins = audit(lifecycle, sid, "bng-1", "<login>")
    assert [(a.ok, a.output) for a in logins] == [(False, "authentication failed")]
    assert bng.counters.to_dict()["logins"] == 0
    # The ONT configured before it and the allocation are undone.
    assert rollback_notices(events) == [
        "Removed ONT 0/1/3 0 from olt-1",
        "Released the IP address and VLAN",
    ]
    svc = lifecycle.service(sid)
    assert (svc.ip_address, svc.vlan, svc.ont_id) == (None, None, None)
    assert lifecycle.leftovers(sid, svc.radius_username) == {}


def test_bng_session_dropped_once_is_retried_and_undoes_nothing(lifecycle: Lifecycle) -> None:
    quick_device_timeout("bng-1", 2.0)  # a dropped session is noticed by a read timeout
    bng = lifecycle.lab.device("bng-1")
    bng.faults.update(drop_match=r"^ip address ")
    sid = lifecycle.new_service()
    # The device heals as soon as the first attempt has been dropped.
    healer = when(lambda: bool(audit(lifecycle, sid, "bng-1", "ip address%")),
                  lambda: bng.faults.update(drop_match=None))  # fmt: skip
    provision(sid)
    healer.join(5)
    events = assert_completed(lifecycle, sid, "provisioning", "active")
    assert [a.ok for a in audit(lifecycle, sid, "bng-1", "ip address%")] == [False, True]
    assert retry_attempts(events) == [2]
    # The failed attempt compensated nothing the run went on with (Prefect rolls the
    # flow's transaction back at a task's first failed attempt; tasks/compensation.py).
    assert rollback_notices(events) == []
    svc = lifecycle.service(sid)
    assert None not in (svc.ip_address, svc.vlan, svc.ont_id)
    held = lifecycle.leftovers(sid, svc.radius_username)
    assert held["ip_allocations"] == held["vlan_allocations"] == 1
    assert [s["outer_vlan"] for s in bng.state.dump()["subinterfaces"]] == [svc.vlan]
    assert set(held) == {"olt-1", "bng-1", "ip_allocations", "vlan_allocations", "radcheck",
                         "radreply", "radusergroup"}  # fmt: skip


def test_bng_session_dropped_mid_config_exhausts_retries(lifecycle: Lifecycle) -> None:
    quick_device_timeout("bng-1", 2.0)  # a dropped session is noticed by a read timeout
    bng = lifecycle.lab.device("bng-1")
    # The session dies after the sub-interface exists but before its IP: half-configured.
    bng.faults.update(drop_match=r"^ip address ")
    sid = lifecycle.new_service()
    with pytest.raises(Exception, match="ip address"):
        provision(sid)
    events = assert_failed(lifecycle, sid, "provisioning", 3, "bng-1:")
    assert retry_attempts(events)
    assert {e.data["step"] for e in events if e.data.get("status") == "retrying"} == {3}
    dropped = audit(lifecycle, sid, "bng-1", "ip address%")
    assert len(dropped) == ATTEMPTS and not any(a.ok for a in dropped)
    # Each attempt removed its own half-applied sub-interface, and the rollback the ONT.
    removed = audit(lifecycle, sid, "bng-1", "no interface%")
    assert len(removed) == ATTEMPTS and all(a.ok for a in removed)
    assert rollback_notices(events) == [
        "Removed ONT 0/1/3 0 from olt-1",
        "Released the IP address and VLAN",
    ]
    svc = lifecycle.service(sid)
    assert lifecycle.leftovers(sid, svc.radius_username) == {}
