"""ONT replacement against the lab: the new ONT on the same port, VLAN and ONT id, IP and
RADIUS untouched, the status it started from (active; suspended and walled, a hard
suspension's ONT deactivated); a failure (too little light, never online, a serial
the OLT already knows) puts the old ONT back as it was; the old serial is free after."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from fiberflow.core.db.models import Operation
from fiberflow.core.settings import get_settings
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.events.schema import validate_event
from fiberflow.flows.ont_replacement import replace_ont
from fiberflow.flows.provision import provision
from fiberflow.flows.suspend import suspend
from tests.fixtures.lifecycle import Lifecycle

OLD = "485754431A2B3C4D"
NEW = "48575443AABBCC01"
PORT = (0, 1, 3)


def _provisioned(lc: Lifecycle, serial: str = OLD, pon_port: str = "0/1/3") -> str:
    sid = lc.new_service(serial, pon_port=pon_port)
    provision(sid)
    assert lc.service(sid).status == "active", lc.service(sid).error
    return sid


def _olt(lc: Lifecycle) -> dict[str, Any]:
    return lc.lab.device("olt-1").state.dump()  # type: ignore[no-any-return]


def _run_events(lc: Lifecycle, sid: str) -> list[tuple[str, dict[str, Any]]]:
    run = lc.service(sid).flow_run_id
    events = [e for e in lc.events(sid) if e.data.get("flow_run_id") == run]
    for e in events:
        validate_event(e.event_type, e.data)
    return [(e.event_type, e.data) for e in events]


def _runs(kind: str) -> float:
    """Workflow metric of ONT replacements (the label is the catalogue's operation)."""
    labels = {"operation": "ont_replacement", "plan": "100M"}
    return REGISTRY.get_sample_value(f"lifecycle_workflow_{kind}_total", labels) or 0.0


def _snapshot(lc: Lifecycle, sid: str) -> tuple[object, ...]:
    svc = lc.service(sid)
    return (svc.pon_port, svc.vlan, svc.ip_address, svc.radius_username, svc.plan)


def test_replace_the_ont_of_an_active_service(lifecycle: Lifecycle) -> None:
    sid = _provisioned(lifecycle)
    before = _snapshot(lifecycle, sid)
    old_id = lifecycle.service(sid).ont_id
    old_ports = _olt(lifecycle)["service_ports"]
    lifecycle.lab.device("olt-1").state.plug(NEW, PORT, -21.5)

    completed = _runs("completed")
    lifecycle.begin(sid, Operation.ONT_REPLACEMENT)
    result = replace_ont(sid, NEW.lower())
    assert _runs("completed") == completed + 1

    svc = lifecycle.service(sid)
    assert svc.status == "active", svc.error
    assert (svc.ont_serial, svc.ont_id, svc.ont_rx_power_dbm) == (NEW, old_id, -21.5)
    assert _snapshot(lifecycle, sid) == before  # IP, VLAN, RADIUS user, port, plan
    assert result["old_serial"] == OLD and result["rx_power_dbm"] == -21.5
    olt = _olt(lifecycle)
    assert [(o["serial"], o["fsp"], o["ont_id"], o["active"]) for o in olt["onts"]] == [
        (NEW, "0/1/3", old_id, True)
    ]
    # The same service-port (index, VLAN, GEM port) on the new ONT.
    assert olt["service_ports"] == old_ports
    assert RadiusStore(lifecycle.engine).get(svc.radius_username or "") is not None

    events = _run_events(lifecycle, sid)
    steps = [(d["step"], d["status"]) for t, d in events if t.endswith(".progress")]
    assert steps[0] == (1, "validating")
    assert {(2, "removing"), (3, "adding"), (4, "testing"), (5, "completed")} <= set(steps)
    measured = [d for t, d in events if d.get("status") == "measured"]
    assert len(measured) == 1 and measured[0]["step"] == 4
    assert "-21.50 dBm" in measured[0]["message"] and measured[0]["rx_power_dbm"] == -21.5
    assert events[-1][0] == "service.ont_replacement.completed"
    assert all(t.startswith("service.ont_replacement.") for t, _ in events)

    # The old serial is free: a new order with it provisions.
    again = _provisioned(lifecycle, OLD, pon_port="0/1/4")
    assert lifecycle.service(again).ont_serial == OLD


def test_a_hard_suspended_service_stays_suspended_and_dark(lifecycle: Lifecycle) -> None:
    sid = _provisioned(lifecycle)
    lifecycle.begin(sid, Operation.SUSPENSION)
    suspend(sid, hard=True)
    user = lifecycle.service(sid).radius_username or ""
    assert [o["active"] for o in _olt(lifecycle)["onts"]] == [False]

    lifecycle.begin(sid, Operation.ONT_REPLACEMENT)
    replace_ont(sid, NEW)

    svc = lifecycle.service(sid)
    assert (svc.status, svc.ont_serial) == ("suspended", NEW), svc.error
    assert svc.ont_rx_power_dbm is not None and -22.0 <= svc.ont_rx_power_dbm <= -18.0
    # Measured while briefly active, then deactivated again like the ONT it replaced.
    assert [(o["serial"], o["active"]) for o in _olt(lifecycle)["onts"]] == [(NEW, False)]
    assert RadiusStore(lifecycle.engine).get(user).groups == ("suspended",)  # type: ignore[union-attr]
    subifs = lifecycle.lab.device("bng-1").state.dump()["subinterfaces"]
    assert [(s["policy_in"], s["policy_out"]) for s in subifs] == [("WALLED-GARDEN",) * 2]
    assert _run_events(lifecycle, sid)[-1][0] == "service.ont_replacement.completed"


def _assert_restored(lc: Lifecycle, sid: str, status: str, olt_before: dict[str, Any],
                     step: int, needle: str) -> None:  # fmt: skip
    svc = lc.service(sid)
    assert svc.status == status
    assert svc.ont_serial == OLD
    assert needle in (svc.error or ""), svc.error
    assert _olt(lc) == olt_before  # the old ONT, its id, activation and service-port
    events = _run_events(lc, sid)
    assert events[-1][0] == "service.ont_replacement.failed"
    assert events[-1][1]["step"] == step and needle in events[-1][1]["error"]
    assert [t for t, _ in events].count("service.ont_replacement.failed") == 1
    notices = [d["message"] for _, d in events if d.get("status") == "rolled_back"]
    assert any(f"Put the old ONT {OLD} back" in m for m in notices), notices


def test_too_little_light_puts_the_old_ont_back(lifecycle: Lifecycle) -> None:
    sid = _provisioned(lifecycle)
    before = _olt(lifecycle)
    rx_before = lifecycle.service(sid).ont_rx_power_dbm
    olt = lifecycle.lab.device("olt-1").state
    olt.plug(NEW, PORT, -29.0)

    failed = _runs("failed")
    lifecycle.begin(sid, Operation.ONT_REPLACEMENT)
    with pytest.raises(Exception, match="-29.00 dBm is below the minimum -27.0 dBm"):
        replace_ont(sid, NEW)
    assert _runs("failed") == failed + 1
    _assert_restored(lifecycle, sid, "active", before, 4, "-29.00 dBm")
    assert lifecycle.service(sid).ont_rx_power_dbm == rx_before  # the kept ONT's reading
    notices = [d["message"] for _, d in _run_events(lifecycle, sid)
               if d.get("status") == "rolled_back"]  # fmt: skip
    assert notices[0] == f"Removed the new ONT {NEW} from olt-1"

    # The connector cleaned: the same serial goes in.
    olt.plug(NEW, PORT, -19.0)
    lifecycle.begin(sid, Operation.ONT_REPLACEMENT)
    replace_ont(sid, NEW)
    assert (lifecycle.service(sid).status, lifecycle.service(sid).ont_serial) == ("active", NEW)


def test_a_new_ont_never_online_restores_a_hard_suspended_service(
    lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIBERFLOW_ONT_ONLINE_TIMEOUT_SECONDS", "1.5")
    get_settings.cache_clear()
    sid = _provisioned(lifecycle)
    lifecycle.begin(sid, Operation.SUSPENSION)
    suspend(sid, hard=True)
    before = _olt(lifecycle)
    # The installer plugged it into another port: registered on 0/1/3, it stays dark.
    lifecycle.lab.device("olt-1").state.plug(NEW, (0, 2, 0), None)

    lifecycle.begin(sid, Operation.ONT_REPLACEMENT)
    with pytest.raises(Exception, match="did not come online"):
        replace_ont(sid, NEW)
    _assert_restored(lifecycle, sid, "suspended", before, 4, "did not come online")
    assert [o["active"] for o in _olt(lifecycle)["onts"]] == [False]  # still hard-suspended


@pytest.mark.parametrize(
    ("serial", "needle"),
    [(OLD, "is already this service's ONT"), ("4857;4431A2B3C4D", "ont_serial")],
)
def test_a_refused_serial_touches_nothing(lifecycle: Lifecycle, serial: str, needle: str) -> None:
    sid = _provisioned(lifecycle)
    before = _olt(lifecycle)
    lifecycle.begin(sid, Operation.ONT_REPLACEMENT)
    with pytest.raises(Exception, match=needle):
        replace_ont(sid, serial)
    svc = lifecycle.service(sid)
    assert (svc.status, svc.ont_serial) == ("active", OLD)
    assert _olt(lifecycle) == before
    assert _run_events(lifecycle, sid)[-1][1]["step"] == 1


def test_a_serial_the_olt_already_holds_touches_nothing(lifecycle: Lifecycle) -> None:
    sid = _provisioned(lifecycle)
    other = _provisioned(lifecycle, NEW, pon_port="0/1/5")
    # The other service is gone from the database's point of view, its ONT is not.
    with lifecycle.engine.begin() as conn:
        conn.execute(
            text("UPDATE service_instances SET status = 'terminated' WHERE id = :id"),
            {"id": other},
        )
    before = _olt(lifecycle)
    lifecycle.begin(sid, Operation.ONT_REPLACEMENT)
    with pytest.raises(Exception, match="already registered on olt-1 as ONT 0/1/5"):
        replace_ont(sid, NEW)
    assert lifecycle.service(sid).status == "active"
    assert _olt(lifecycle) == before
