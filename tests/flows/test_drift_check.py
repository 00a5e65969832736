"""The fleet drift check against the lab: drift typed by hand on the devices over SSH
(and RADIUS rows changed behind the system) is found and repaired; services in sync get
no run; each device is read a fixed number of times whatever the number of services;
orphans are reported, then removed only when asked; an unreadable device fails only its
own services' checks; a service mid-operation is skipped."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from fiberflow.core.db.models import DriftCheck, RadCheck, RadUserGroup, ServiceInstance
from fiberflow.flows.drift_check import drift_check
from fiberflow.lab.devices import LabOlt
from fiberflow.lab.seed.plan import Planned
from tests.fixtures.lifecycle import Lifecycle
from tests.flows.drift_lab import (
    change_radius_ip,
    delete_radius_rows,
    seed,
    type_bng,
    type_olt,
)

UPLINK = "GigabitEthernet0/0/1"


def _state(lc: Lifecycle) -> dict[str, Any]:
    """What the devices hold (service-port indexes aside: a re-add renumbers them)."""
    out: dict[str, Any] = {}
    for name in ("olt-1", "olt-2"):
        dump = lc.lab.device(name).state.dump()
        onts = [{k: v for k, v in o.items() if k != "online"} for o in dump["onts"]]
        sps = dump["service_ports"]
        out[name] = (onts, sorted((p["fsp"], p["ont_id"], p["vlan"], p["gem_port"]) for p in sps))
    out["bng-1"] = lc.lab.device("bng-1").state.dump()["subinterfaces"]
    with lc.engine.connect() as conn:
        out["radius"] = sorted(
            tuple(str(v) for v in row)
            for model in (RadCheck, RadUserGroup)
            for row in conn.execute(select(model.username, *_cols(model)))
        )
    return out


def _cols(model: Any) -> list[Any]:
    return [model.attribute, model.value] if model is RadCheck else [model.groupname]


def _index_of(lc: Lifecycle, p: Planned) -> int:
    sps = lc.lab.device(p.olt).state.dump()["service_ports"]
    return next(sp["index"] for sp in sps if (sp["fsp"], sp["ont_id"]) == (p.pon_port, p.ont_id))


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _events(lc: Lifecycle, sid: str) -> list[str]:
    return [e.event_type for e in lc.events(sid)]


def _reads(lc: Lifecycle) -> dict[str, tuple[float, float]]:
    """CLI logins and lines per device since the last reset."""
    out = {}
    for name in ("olt-1", "olt-2", "bng-1"):
        c = lc.lab.device(name).counters.to_dict()
        out[name] = (c["logins"], c["commands"])
    return out


def _reset_counters(lc: Lifecycle) -> None:
    for name in ("olt-1", "olt-2", "bng-1"):
        lc.lab.device(name).counters.reset()


def test_every_kind_of_drift_typed_by_hand_is_found_and_repaired(
    lifecycle: Lifecycle, prefect_api: str
) -> None:
    lc = lifecycle
    repaired_before = _metric("drift_check_services_total", outcome="repaired")
    planned = seed(lc, 10)
    before = _state(lc)
    ontsub, wrongvlan, policy, nosp, noont, radrow, radip = planned[:7]
    in_sync = planned[7:]
    type_bng(lc, [f"no interface {ontsub.interface}"])
    type_bng(lc, [f"interface {wrongvlan.interface}", "encapsulation dot1Q 4000"])
    type_bng(lc, [f"interface {policy.interface}", f"no service-policy input {policy.policy_in}",
                  "service-policy input PLAN-WRONG-IN"])  # fmt: skip
    type_olt(lc, nosp.olt, [f"undo service-port {_index_of(lc, nosp)}"])
    f, s, p = noont.pon_port.split("/")
    type_olt(lc, noont.olt, [f"undo service-port {_index_of(lc, noont)}", f"interface gpon {f}/{s}",
                             f"ont delete {p} {noont.ont_id}", "quit"])  # fmt: skip
    delete_radius_rows(lc, radrow.username, RadUserGroup)
    change_radius_ip(lc, radip.username, "100.64.250.250")
    assert _state(lc) != before

    report = drift_check()

    drifted = {d["service_id"]: d for d in report["drifted"]}
    assert set(drifted) == {p.id for p in planned[:7]}
    assert {d["outcome"] for d in drifted.values()} == {"repaired"}
    assert "bng.sub-interface: expected vlan" in drifted[ontsub.id]["diff"]
    assert f"bng.vlan: expected {wrongvlan.vlan}, found 4000" in drifted[wrongvlan.id]["diff"]
    assert (
        f"bng.policy_in: expected {policy.policy_in}, found PLAN-WRONG-IN"
        in drifted[policy.id]["diff"]
    )
    assert "olt.service-port: expected vlan" in drifted[nosp.id]["diff"]
    assert f"olt.ont: expected {noont.serial}, found absent" in drifted[noont.id]["diff"]
    assert f"radius.group: expected {radrow.plan}, found None" in drifted[radrow.id]["diff"]
    assert "radius.ip_address" in drifted[radip.id]["diff"]
    assert (report["services_checked"], report["in_sync"], report["repaired"]) == (10, 3, 7)
    assert report["failed"] == 0 and report["orphans"] == [] and report["skipped"] == []
    assert report["devices_read"] == ["bng-1", "olt-1", "olt-2", "radius"]
    assert _state(lc) == before
    # Drifted services streamed their reprovisioning; the ones in sync nothing at all.
    for p in planned[:7]:
        assert _events(lc, p.id)[-1] == "service.reprovisioning.completed"
        assert lc.service(p.id).status == "active"
    for p in in_sync:
        assert _events(lc, p.id) == []
    # Summed in /metrics, and a table in the Prefect UI.
    assert _metric("drift_check_services_total", outcome="repaired") - repaired_before == 7
    found = httpx.post(
        f"{prefect_api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [f"drift-check-{report['id'][:8]}"]}}},
    )
    (artifact,) = found.json()
    assert artifact["type"] == "table"
    assert {row["device_or_service"] for row in json.loads(artifact["data"])} == {
        p.id for p in planned[:7]}  # fmt: skip
    # The report is stored.
    with Session(lc.engine) as s:
        row = s.get(DriftCheck, report["id"])
        assert row is not None and row.status == "completed" and row.finished_at is not None
        assert row.report is not None and row.report["repaired"] == 7


def test_devices_are_read_a_fixed_number_of_times_whatever_the_service_count(
    lifecycle: Lifecycle,
) -> None:
    lc = lifecycle
    seed(lc, 5)
    _reset_counters(lc)
    small = drift_check()
    reads_small = _reads(lc)
    seed(lc, 60)
    _reset_counters(lc)
    large = drift_check()
    assert (small["services_checked"], large["services_checked"]) == (5, 65)
    assert small["drifted"] == large["drifted"] == []
    # One session per device, the same lines, for 5 services or 65.
    assert reads_small == _reads(lc)
    assert {logins for logins, _ in reads_small.values()} == {1}


def test_orphans_are_reported_left_alone_then_removed_when_asked(lifecycle: Lifecycle) -> None:
    lc = lifecycle
    planned = seed(lc, 3)
    type_olt(lc, "olt-1", ["interface gpon 0/2",
                           'ont add 15 100 sn-auth 48575443DEADBEEF omci ont-lineprofile-id 10 '
                           'ont-srvprofile-id 10 desc "ghost"', "quit",
                           "service-port 4000 vlan 3990 gpon 0/2/15 ont 100 gemport 1 "
                           "multi-service user-vlan 3990 tag-transform translate"])  # fmt: skip
    type_bng(lc, [f"interface {UPLINK}.3991", "encapsulation dot1Q 3991"])
    with lc.engine.begin() as conn:
        conn.execute(insert(RadCheck).values(username="ghost-user", attribute="Cleartext-Password",
                                             op=":=", value="x"))  # fmt: skip
    want = [
        {"device": "bng-1", "kind": "sub-interface", "ref": f"{UPLINK}.3991"},
        {"device": "olt-1", "kind": "ont", "ref": "0/2/15 100"},
        {"device": "olt-1", "kind": "service-port", "ref": "4000"},
        {"device": "radius", "kind": "radius-user", "ref": "ghost-user"},
    ]
    kept = _state(lc)

    report = drift_check()
    assert sorted(report["orphans"], key=lambda o: (o["device"], o["kind"])) == want
    assert report["orphans_removed"] == [] and report["in_sync"] == 3
    assert _state(lc) == kept

    report = drift_check(remove_orphans=True)
    assert sorted(report["orphans_removed"], key=lambda o: (o["device"], o["kind"])) == want
    after = drift_check()
    assert after["orphans"] == [] and after["in_sync"] == 3
    olt = lc.lab.device("olt-1").state.dump()
    assert all(o["serial"] != "48575443DEADBEEF" for o in olt["onts"])
    assert all(sp["index"] != 4000 for sp in olt["service_ports"])
    names = {s["name"] for s in lc.lab.device("bng-1").state.dump()["subinterfaces"]}
    assert f"{UPLINK}.3991" not in names and {p.interface for p in planned} <= names
    with lc.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RadCheck)
                           .where(RadCheck.username == "ghost-user")) == 0  # fmt: skip


def test_unreadable_device_fails_only_its_services_and_busy_services_are_skipped(
    lifecycle: Lifecycle,
) -> None:
    lc = lifecycle
    planned = seed(lc, 12)
    on_1 = [p for p in planned if p.olt == "olt-1"]
    on_2 = [p for p in planned if p.olt == "olt-2"]
    assert on_1 and on_2
    olt2 = lc.lab.device("olt-2")
    assert isinstance(olt2, LabOlt)
    olt2.faults.update(auth_failure=True)
    # Drift on both sides: only olt-1's is repaired; olt-2's service is not even checked.
    delete_radius_rows(lc, on_1[0].username)
    delete_radius_rows(lc, on_2[0].username)
    # A service mid-operation, drifted too: skipped, left alone.
    busy = on_1[1]
    delete_radius_rows(lc, busy.username)
    with lc.engine.begin() as conn:
        conn.execute(update(ServiceInstance).where(ServiceInstance.id == busy.id)
                     .values(status="suspending", current_operation="suspension"))  # fmt: skip

    report = drift_check()

    assert [d["service_id"] for d in report["drifted"]] == [on_1[0].id]
    assert report["repaired"] == 1
    (down,) = report["unreadable"]
    assert down["device"] == "olt-2" and "authentication failed" in down["error"]
    assert {s["service_id"] for s in down["services"]} == {p.id for p in on_2}
    assert report["skipped"] == [{"service_id": busy.id, "tenant_id": busy_tenant(lc, busy.id),
                                  "status": "suspending"}]  # fmt: skip
    assert report["services_checked"] == len(on_1) - 1
    assert "olt-2" not in report["devices_read"]
    # Neither repaired nor failed: olt-2's drifted service is as it was.
    assert lc.service(on_2[0].id).status == "active"
    assert _events(lc, on_2[0].id) == []
    assert lc.service(busy.id).status == "suspending" and _events(lc, busy.id) == []
    with lc.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RadCheck)
                           .where(RadCheck.username == on_2[0].username)) == 0  # fmt: skip


def busy_tenant(lc: Lifecycle, sid: str) -> str:
    return lc.service(sid).tenant_id


def test_one_service_check_reads_its_devices_and_repairs_nothing(lifecycle: Lifecycle) -> None:
    lc = lifecycle
    planned = seed(lc, 4)
    target = next(p for p in planned if p.olt == "olt-1")
    type_bng(lc, [f"interface {target.interface}", f"no service-policy output {target.policy_out}"])
    _reset_counters(lc)
    report = drift_check(service_id=target.id)
    (d,) = report["drifted"]
    assert d["service_id"] == target.id and d["outcome"] == "not_repaired"
    assert f"bng.policy_out: expected {target.policy_out}, found None" in d["diff"]
    assert report["devices_read"] == ["bng-1", target.olt, "radius"]
    assert report["orphans"] == []
    other = "olt-2" if target.olt == "olt-1" else "olt-1"
    assert _reads(lc)[other] == (0, 0)
    assert _events(lc, target.id) == []


def test_a_device_that_times_out_leaves_its_services_unchecked(lifecycle: Lifecycle) -> None:
    lc = lifecycle
    planned = seed(lc, 3)
    delete_radius_rows(lc, planned[0].username)
    bng = lc.lab.device("bng-1")
    # Longer than the inventory's 5 s device timeout, on the read only (logins are quick).
    bng.faults.update(latency=6.0, latency_match="^show running-config")
    report = drift_check()
    (down,) = report["unreadable"]
    assert down["device"] == "bng-1" and down["error"]
    assert {s["service_id"] for s in down["services"]} == {p.id for p in planned}
    assert report["services_checked"] == 0 and report["drifted"] == []
    assert report["repaired"] == report["failed"] == 0
    assert {lc.service(p.id).status for p in planned} == {"active"}
    assert _events(lc, planned[0].id) == []


def test_a_check_whose_run_crashed_is_failed_not_running_forever(lifecycle: Lifecycle) -> None:
    lc = lifecycle
    run_id = str(uuid.uuid4())
    with Session(lc.engine) as s, s.begin():
        s.add(DriftCheck(id=run_id, status="running", flow_run_id=run_id))
        s.add(DriftCheck(id=str(uuid.uuid4()), status="completed", flow_run_id=run_id))
    # What the worker calls when the run's process died (stack/run_outcome.py).
    for hook in drift_check.on_crashed_hooks:
        hook(drift_check, SimpleNamespace(id=run_id), SimpleNamespace(name="Crashed"))
    with Session(lc.engine) as s:
        rows = {r.status: r for r in s.scalars(select(DriftCheck))}
    assert set(rows) == {"failed", "completed"}
    assert rows["failed"].id == run_id and rows["failed"].error == "the run ended Crashed"
    assert drift_check.on_cancellation_hooks == drift_check.on_crashed_hooks
