"""``?dry_run=true`` on the operation endpoints: refusals answer exactly as without it,
in the same order; a dry run that passes writes nothing (no row, no allocation, no RADIUS
row, no audit row, no event, no device change, no flow run) and no create token.

The whole-stack tests (slow) take a dry run through the API, then run the real operation
against the lab and compare: the dry run's CLI lines per device are the run's audited
configuration lines in order, its RADIUS rows the rows the run wrote (the audit says so),
its IPAM lines the allocations the service got or gave back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fiberflow.api.dry_run import PLANNER
from fiberflow.core.db.migrate import upgrade
from fiberflow.core.db.models import (
    DeviceCommandAudit,
    EventLog,
    IpAllocation,
    Operation,
    RadCheck,
    RadReply,
    RadUserGroup,
    ServiceInstance,
    ServiceStatus,
    VlanAllocation,
)
from fiberflow.flows.ont_replacement import replace_ont
from fiberflow.flows.plan_change import change_plan
from fiberflow.flows.provision import provision
from fiberflow.flows.reprovision import reprovision
from fiberflow.flows.resume import resume
from fiberflow.flows.suspend import suspend
from fiberflow.flows.terminate import terminate
from fiberflow.tasks.dry_run import plan
from tests.fixtures.api_app import ApiApp, new_serial, open_api
from tests.fixtures.lifecycle import TENANT, Lifecycle

SVC = "/api/v1/services"


def _both(app: ApiApp, path: str, body: Any = None, role: str = "operator") -> tuple[Any, Any]:
    """(status, body) of the request without, then with, ``dry_run=true``."""
    out = []
    for query in ("", "?dry_run=true"):
        r = app.client.post(f"{path}{query}", json=body, headers=app.auth(role))
        out.append((r.status_code, r.json()))
    return out[0], out[1]


def _rows(app: ApiApp) -> list[tuple[Any, ...]]:
    with Session(app.engine) as s:
        q = select(ServiceInstance.id, ServiceInstance.status, ServiceInstance.updated_at,
                   ServiceInstance.flow_run_id).order_by(ServiceInstance.id)  # fmt: skip
        return [tuple(r) for r in s.execute(q)]


def test_refusals_are_the_same_with_dry_run_and_change_nothing(api_app_sqlite: ApiApp) -> None:
    app = api_app_sqlite
    active = app.insert_service()
    suspended = app.insert_service(status=ServiceStatus.SUSPENDED)
    provisioning = app.insert_service(status=ServiceStatus.PROVISIONING)
    held = app.service(active).ont_serial
    order = {"customer_ref": "c-9", "plan": "100M", "olt": "olt-1", "pon_port": "0/1/3",
             "ont_serial": new_serial()}  # fmt: skip
    cases: list[tuple[str, Any, str, int]] = [
        (SVC, order, "customer", 403),
        (SVC, {**order, "plan": "9G"}, "operator", 422),
        (SVC, {**order, "pon_port": "0/9/9"}, "operator", 422),
        (SVC, {**order, "ont_serial": "xyz"}, "operator", 422),
        (SVC, {**order, "ont_serial": held}, "operator", 409),
        (f"{SVC}/{uuid.uuid4()}/suspend", None, "operator", 404),
        (f"{SVC}/{active}/suspend", {"hard": "sometimes"}, "operator", 422),
        (f"{SVC}/{active}/suspend", None, "customer", 403),
        (f"{SVC}/{suspended}/suspend", None, "operator", 409),
        (f"{SVC}/{active}/resume", None, "operator", 409),
        (f"{SVC}/{provisioning}/terminate", None, "operator", 409),
        (f"{SVC}/{active}/change-plan", None, "operator", 422),
        (f"{SVC}/{active}/change-plan", {"plan": "9G"}, "operator", 422),
        (f"{SVC}/{active}/change-plan", {"plan": "100M"}, "operator", 409),
        (f"{SVC}/{suspended}/change-plan", {"plan": "500M"}, "operator", 409),
        (f"{SVC}/{active}/replace-ont", {"ont_serial": "nope"}, "operator", 422),
        (f"{SVC}/{active}/replace-ont", {"ont_serial": held}, "operator", 409),
        (f"{SVC}/{provisioning}/replace-ont", {"ont_serial": new_serial()}, "operator", 409),
        (f"{SVC}/{suspended}/reprovision", None, "operator", 409),
        (f"{SVC}/{uuid.uuid4()}/reprovision", None, "operator", 404),
    ]
    before, count = _rows(app), app.count()
    for path, body, role, code in cases:
        real, dry = _both(app, path, body, role)
        assert real == dry, (path, body)
        assert real[0] == code, (path, body, real)
    assert _rows(app) == before and app.count() == count


def test_a_passing_state_check_commits_nothing(api_app_sqlite: ApiApp) -> None:
    """The transition is applied and rolled back: this API process has no planner, so
    the answer is 503, and the row is still ``active`` with nothing recorded."""
    app = api_app_sqlite
    sid = app.insert_service()
    before = _rows(app)
    r = app.client.post(f"{SVC}/{sid}/suspend?dry_run=true", headers=app.auth())
    assert r.status_code == 503 and "dry run" in r.json()["detail"]
    assert _rows(app) == before


@pytest.fixture
def limited_api(tmp_path: Path, api_inventory: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiApp]:  # fmt: skip
    monkeypatch.setenv("FIBERFLOW_CREATE_RATE_PER_MINUTE", "1")
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    with open_api(url, tmp_path / "data", api_inventory, None) as app:
        yield app


def test_a_dry_create_takes_no_create_token(limited_api: ApiApp) -> None:
    app = limited_api
    tenant = str(uuid.uuid4())  # a bucket of its own in the shared Redis
    order = {"customer_ref": "c-1", "plan": "100M", "olt": "olt-1", "pon_port": "0/1/3",
             "activation": "on_discovery"}  # fmt: skip
    headers = app.auth(tenant=tenant)
    for _ in range(3):  # zero-touch: nothing on any device until the ONT appears
        r = app.client.post(f"{SVC}?dry_run=true", json=order, headers=headers)
        assert r.status_code == 200 and r.json() == {"operation": "provisioning", "changes": []}
    assert app.count() == 0
    assert app.client.post(SVC, json=order, headers=headers).status_code == 202
    assert app.client.post(SVC, json=order, headers=headers).status_code == 429


# -- the whole stack: a dry run, then the real run, compared -------------------------------
@pytest.fixture
def stack(lifecycle: Lifecycle, tmp_path: Path) -> Iterator[tuple[ApiApp, Lifecycle]]:
    """The API on the lifecycle's database and lab, with the shell's planner."""
    inventory = Path(os.environ["FIBERFLOW_INVENTORY"])
    with open_api(lifecycle.database_url, tmp_path / "api", inventory,
                  os.environ["PREFECT_API_URL"]) as app:  # fmt: skip
        app.app.state.fiberflow.extras[PLANNER] = plan
        yield app, lifecycle


def _world(app: ApiApp, lc: Lifecycle) -> tuple[Any, ...]:
    """Everything a dry run must leave as it was."""
    with Session(lc.engine) as s:
        tables = tuple(
            sorted(tuple(str(v) for v in row) for row in s.execute(select(*cols)))
            for cols in (
                (ServiceInstance.id, ServiceInstance.status, ServiceInstance.updated_at,
                 ServiceInstance.flow_run_id, ServiceInstance.radius_username),
                (IpAllocation.address, IpAllocation.service_id),
                (VlanAllocation.vlan, VlanAllocation.service_id),
                (RadCheck.username, RadCheck.attribute, RadCheck.value),
                (RadReply.username, RadReply.attribute, RadReply.value),
                (RadUserGroup.username, RadUserGroup.groupname),
            )
        )  # fmt: skip
        audit = s.scalar(select(func.count()).select_from(DeviceCommandAudit))
        events = s.scalar(select(func.count()).select_from(EventLog))
    devices = tuple(repr(lc.lab.device(d).state.dump()) for d in ("olt-1", "olt-2", "bng-1"))
    runs = httpx.post(f"{app.prefect_url}/flow_runs/count", json={}).json()
    return tables, audit, events, devices, runs


def _dry(app: ApiApp, lc: Lifecycle, path: str, body: Any = None) -> dict[str, Any]:
    before = _world(app, lc)
    r = app.client.post(f"{path}?dry_run=true", json=body, headers=app.auth(tenant=TENANT))
    assert r.status_code == 200, r.text
    assert _world(app, lc) == before  # nothing written anywhere, no flow run
    answer: dict[str, Any] = r.json()
    assert {c["kind"] for c in answer["changes"]} <= {"cli", "rows", "allocation"}
    return answer


def _lines(answer: dict[str, Any], kind: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in answer["changes"]:
        if c["kind"] == kind:
            out.setdefault(c["target"], []).extend(c["lines"])
    return out


def _ran(lc: Lifecycle, sid: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The last run's configuration lines per device and RADIUS rows, from the audit."""
    run = lc.service(sid).flow_run_id
    with Session(lc.engine) as s:
        q = select(DeviceCommandAudit).where(DeviceCommandAudit.flow_run_id == run)
        records = list(s.scalars(q.order_by(DeviceCommandAudit.id)))
    cli: dict[str, list[str]] = {}
    for rec in records:
        if rec.config:
            cli.setdefault(rec.device, []).append(rec.command)
    radius = [rec.output for rec in records if rec.device == "radius-sql"]
    rows = [line for output in radius for line in output.splitlines()]
    return cli, ({"radius": rows} if rows else {})


def _matches(answer: dict[str, Any], lc: Lifecycle, sid: str, id_: str = "") -> None:
    cli, rows = _ran(lc, sid)
    assert _lines(answer, "cli") == cli
    rows_of = _lines(answer, "rows").items()
    dry_rows = {t: [line.replace("<id>", id_) for line in v] for t, v in rows_of}
    assert dry_rows == rows


def _owner(lc: Lifecycle, sid: str) -> None:
    with lc.engine.begin() as conn:  # the API's operator is of the lifecycle's tenant
        conn.execute(ServiceInstance.__table__.update().where(ServiceInstance.id == sid)
                     .values(tenant_id=TENANT))  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_provision_suspend_resume_terminate_as_their_dry_runs_said(
    stack: tuple[ApiApp, Lifecycle],
) -> None:
    app, lc = stack
    serial = new_serial()
    order = {"customer_ref": "dry-1", "plan": "100M", "olt": "olt-1", "pon_port": "0/1/3",
             "ont_serial": serial}  # fmt: skip
    planned = _dry(app, lc, SVC, order)
    assert planned["operation"] == "provisioning"
    assert [c["target"] for c in planned["changes"]] == ["ipam", "olt-1", "bng-1", "radius"]
    assert "+ radcheck dry-1.<id> Cleartext-Password := ***" in _lines(planned, "rows")["radius"]

    sid = lc.new_service(serial, customer="dry-1")
    provision(sid)
    svc = lc.service(sid)
    assert svc.status == "active", svc.error
    _matches(planned, lc, sid, sid[:8])
    assert _lines(planned, "allocation") == {"ipam": [f"ip {svc.ip_address}", f"vlan {svc.vlan}"]}
    _owner(lc, sid)

    planned = _dry(app, lc, f"{SVC}/{sid}/suspend", {"hard": True})
    assert set(_lines(planned, "cli")) == {"bng-1", "olt-1"}
    lc.begin(sid, Operation.SUSPENSION)
    suspend(sid, hard=True)
    assert lc.service(sid).status == "suspended", lc.service(sid).error
    _matches(planned, lc, sid)

    planned = _dry(app, lc, f"{SVC}/{sid}/resume")
    lc.begin(sid, Operation.RESUMPTION)
    resume(sid)
    assert lc.service(sid).status == "active", lc.service(sid).error
    _matches(planned, lc, sid)

    planned = _dry(app, lc, f"{SVC}/{sid}/terminate")
    lc.begin(sid, Operation.TERMINATION)
    terminate(sid)
    assert lc.service(sid).status == "terminated", lc.service(sid).error
    _matches(planned, lc, sid)
    released = [f"release ip {svc.ip_address}", f"release vlan {svc.vlan}"]
    assert _lines(planned, "allocation") == {"ipam": released}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_plan_change_ont_replacement_and_repair_as_their_dry_runs_said(
    stack: tuple[ApiApp, Lifecycle],
) -> None:
    app, lc = stack
    sid = lc.new_service(new_serial())
    provision(sid)
    assert lc.service(sid).status == "active", lc.service(sid).error
    _owner(lc, sid)

    planned = _dry(app, lc, f"{SVC}/{sid}/change-plan", {"plan": "500M"})
    assert planned["operation"] == "plan_change"
    lc.begin(sid, Operation.PLAN_CHANGE)
    change_plan(sid, "500M")
    assert lc.service(sid).plan == "500M", lc.service(sid).error
    _matches(planned, lc, sid)

    new = new_serial()
    lc.lab.device("olt-1").state.plug(new, (0, 1, 3), -20.0)
    planned = _dry(app, lc, f"{SVC}/{sid}/replace-ont", {"ont_serial": new})
    lc.begin(sid, Operation.ONT_REPLACEMENT)
    replace_ont(sid, new)
    assert lc.service(sid).ont_serial == new, lc.service(sid).error
    _matches(planned, lc, sid)

    # Drift made by hand on every system: the ONT gone, a rogue policy, no RADIUS group.
    svc = lc.service(sid)
    lc.lab.device("olt-1").admin("delete_ont", fsp="0/1/3", ont_id=svc.ont_id)
    subif = f"{lc.lab.inventory.bngs[0].uplink}.{svc.vlan}"
    lc.lab.device("bng-1").admin("set_policy", interface=subif, direction="input",
                                 policy="ROGUE")  # fmt: skip
    with lc.engine.begin() as conn:
        conn.execute(delete(RadUserGroup).where(RadUserGroup.username == svc.radius_username))
    planned = _dry(app, lc, f"{SVC}/{sid}/reprovision")
    assert set(_lines(planned, "cli")) == {"olt-1", "bng-1"} and _lines(planned, "rows")
    lc.begin(sid, Operation.REPROVISIONING)
    reprovision(sid)
    assert lc.service(sid).status == "active", lc.service(sid).error
    _matches(planned, lc, sid)
    assert _dry(app, lc, f"{SVC}/{sid}/reprovision")["changes"] == []  # in sync now
