"""The discovery pass against the lab over real SSH: an exact serial binds and provisions
to active, a serial-less order alone on its port binds the one unknown ONT there, two
orders on one port keep waiting, a terminated order is left alone, and each OLT's
autofind is read once per pass whatever the number of orders."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from prefect.flow_engine import load_flow_run, run_flow
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import DeviceCommandAudit, OntSighting, ServiceInstance
from fiberflow.flows.discovery import OltsUnread, discover_onts
from fiberflow.flows.provision import provision
from fiberflow.lab.devices import LabOlt
from tests.fixtures.lifecycle import TENANT, Lifecycle

SN_EXACT = "485754430000E001"
SN_LONE = "485754430000E002"
SN_STRAY = "485754430000E003"
SN_GONE = "485754430000E004"
AUTOFIND = "display ont autofind all"


def waiting(lc: Lifecycle, pon_port: str, serial: str | None = None) -> str:
    with Session(lc.engine) as s, s.begin():
        row = ServiceInstance(tenant_id=TENANT, customer_ref="cust-1", plan="100M",
                              olt="olt-1", pon_port=pon_port, ont_serial=serial,
                              activation="on_discovery")  # fmt: skip
        row.await_ont()
        s.add(row)
        s.flush()
        return row.id


def autofind_reads(lc: Lifecycle) -> Counter[str]:
    with Session(lc.engine) as s:
        q = select(DeviceCommandAudit.device).where(DeviceCommandAudit.command == AUTOFIND)
        return Counter(s.scalars(q))


def test_a_pass_binds_what_is_certain_and_provisions_it(
    lifecycle: Lifecycle, prefect_deployments: str
) -> None:
    lc = lifecycle
    exact = waiting(lc, "0/1/3", SN_EXACT)
    lone = waiting(lc, "0/1/4")
    twins = [waiting(lc, "0/1/5"), waiting(lc, "0/1/5")]
    gone = waiting(lc, "0/1/6", SN_GONE)
    with Session(lc.engine) as s, s.begin():
        s.get_one(ServiceInstance, gone).withdraw()  # terminated while waiting
    olt = lc.lab.device("olt-1")
    assert isinstance(olt, LabOlt)
    for port, sn in (("0/1/3", SN_EXACT), ("0/1/4", SN_LONE), ("0/1/5", SN_STRAY),
                     ("0/1/6", SN_GONE)):  # fmt: skip
        olt.plug(port, sn)
    for name in ("olt-1", "olt-2", "bng-1"):
        lc.lab.device(name).counters.reset()

    result = discover_onts()

    assert result["bound"] == sorted([exact, lone])
    waits = result["waiting"]
    assert isinstance(waits, dict) and set(waits) == set(twins)
    assert "2 orders wait on olt-1 0/1/5" in waits[twins[0]]
    # One session and one autofind read per OLT, for five orders; nothing else touched.
    assert {n: lc.lab.device(n).counters.logins for n in ("olt-1", "olt-2")} == {
        "olt-1": 1, "olt-2": 1}  # fmt: skip
    assert autofind_reads(lc) == Counter({"olt-1": 1, "olt-2": 1})
    assert lc.lab.device("bng-1").counters.connections == 0
    with Session(lc.engine) as s:
        stored = {(r.olt, r.pon_port, r.serial) for r in s.scalars(select(OntSighting))}
    assert stored == {("olt-1", "0/1/3", SN_EXACT), ("olt-1", "0/1/4", SN_LONE),
                      ("olt-1", "0/1/5", SN_STRAY), ("olt-1", "0/1/6", SN_GONE)}  # fmt: skip

    # Bound: the serial set, provisioning, and a run of the provision deployment each.
    for sid, sn in ((exact, SN_EXACT), (lone, SN_LONE)):
        svc = lc.service(sid)
        assert (svc.status, svc.ont_serial) == ("provisioning", sn)
        assert svc.flow_run_id is not None
        run = load_flow_run(uuid.UUID(svc.flow_run_id))
        assert run.parameters == {"service_id": sid}
        # What the worker does with it: run the deployment's flow in that flow run.
        run_flow(provision, flow_run=run)
        assert lc.service(sid).status == "active", lc.service(sid).error
    assert {s.status for s in map(lc.service, twins)} == {"awaiting_ont"}
    assert lc.service(gone).status == "terminated"
    registered = {o["serial"] for o in olt.state.dump()["onts"]}
    assert registered == {SN_EXACT, SN_LONE}

    # The next pass: the bound ONTs left autofind; the twins still wait.
    again = discover_onts()
    left_waiting = again["waiting"]
    assert isinstance(left_waiting, dict) and set(left_waiting) == set(twins)
    assert again["bound"] == []
    assert autofind_reads(lc) == Counter({"olt-1": 2, "olt-2": 2})
    with Session(lc.engine) as s:
        left = {r.serial for r in s.scalars(select(OntSighting))}
    assert left == {SN_STRAY, SN_GONE}


def test_an_unreadable_olt_keeps_its_sightings_and_fails_the_pass_after_the_rest(
    lifecycle: Lifecycle, prefect_deployments: str
) -> None:
    lc = lifecycle
    order = waiting(lc, "0/1/3", SN_EXACT)
    olt1 = lc.lab.device("olt-1")
    assert isinstance(olt1, LabOlt)
    olt1.plug("0/1/3", SN_EXACT)
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(lc.engine) as s, s.begin():
        s.add_all([
            OntSighting(olt="olt-2", pon_port="0/2/1", serial=SN_STRAY, seen_at=earlier),
            OntSighting(olt="olt-9", pon_port="0/1/1", serial=SN_GONE, seen_at=earlier),
        ])  # fmt: skip
    lc.lab.device("olt-2").faults.update(auth_failure=True)

    with pytest.raises(OltsUnread, match="olt-2"):
        discover_onts()

    svc = lc.service(order)
    assert (svc.status, svc.ont_serial) == ("provisioning", SN_EXACT) and svc.flow_run_id
    with Session(lc.engine) as s:
        stored = {(r.olt, r.serial) for r in s.scalars(select(OntSighting))}
    # olt-2's last good read stays (with its old time); olt-9 left the inventory.
    assert stored == {("olt-1", SN_EXACT), ("olt-2", SN_STRAY)}
