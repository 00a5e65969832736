"""Secrets never appear in logs, audit rows, events or API answers.

A whole lifecycle (provision, suspend with CoA, terminate with Disconnect, and a
provisioning refused by an OLT that rejects the login) runs against the lab with a
device password, a RADIUS secret and a NAS secret read from environment variables, as
in production. Then every log record (DEBUG and up), every device-command audit row,
every event, every service row, and the API's answers to good and bad requests are
searched for those values, the JWT key and the subscriber's RADIUS Cleartext-Password.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import (
    DeviceCommandAudit,
    EventLog,
    Operation,
    RadCheck,
    ServiceInstance,
)
from fiberflow.core.tokens import issue
from fiberflow.devices.inventory import load_inventory
from fiberflow.flows.provision import provision
from fiberflow.flows.suspend import suspend
from fiberflow.flows.terminate import terminate
from fiberflow.lab.lab_inventory import write_inventory
from fiberflow.tasks.runtime import reset_runtime
from tests.fixtures.api_app import open_api
from tests.fixtures.lifecycle import TENANT, Lifecycle

DEVICE_ENV, RADIUS_ENV, NAS_ENV = "FF_HYGIENE_DEVICE_PW", "FF_HYGIENE_RADIUS", "FF_HYGIENE_NAS"
SERVICES = "/api/v1/services"


def _leaks(texts: Iterable[tuple[str, str]], wanted: dict[str, str]) -> list[str]:
    """``where: which secret`` for every text that holds one of ``wanted``'s values."""
    return [f"{where}: {name}" for where, text in texts
            for name, value in wanted.items() if value in text]  # fmt: skip


def _log_texts(records: list[logging.LogRecord]) -> Iterable[tuple[str, str]]:
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for r in records:
        # The rendered line (with any traceback) and every attribute: args, extra= fields.
        yield f"log {r.name} {r.getMessage()[:60]!r}", fmt.format(r) + repr(vars(r))


def _db_texts(lc: Lifecycle) -> Iterable[tuple[str, str]]:
    with Session(lc.engine) as s:
        for a in s.scalars(select(DeviceCommandAudit)):
            yield f"audit {a.device} {a.command[:40]!r}", f"{a.command}\n{a.output}\n{a.step}"
        for e in s.scalars(select(EventLog)):
            yield f"event {e.id} {e.event_type}", json.dumps(e.data)
        for svc in s.scalars(select(ServiceInstance)):
            cols = {a.key: getattr(svc, a.key) for a in svc.__mapper__.column_attrs}
            yield f"service {svc.id}", repr(cols)


def _use_secrets_from_env(lc: Lifecycle, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The lab now wants fresh secrets; the inventory names their variables."""
    values = {
        "device password": "Dv-" + secrets.token_urlsafe(18),
        "RADIUS secret": "Rs-" + secrets.token_urlsafe(18),
        "NAS secret": "Ns-" + secrets.token_urlsafe(18),
    }
    monkeypatch.setenv(DEVICE_ENV, values["device password"])
    monkeypatch.setenv(RADIUS_ENV, values["RADIUS secret"])
    monkeypatch.setenv(NAS_ENV, values["NAS secret"])
    lab = lc.lab
    for name in ("olt-1", "bng-1"):
        lab.device(name).password = values["device password"]
    # olt-2 expects another password: its provisioning fails at the SSH login.
    lab.device("olt-2").password = "Other-" + secrets.token_urlsafe(12)
    lab.radius.secret = values["RADIUS secret"].encode()
    lab.nas.secret = values["NAS secret"].encode()

    path = Path(os.environ["FIBERFLOW_INVENTORY"])
    inv = load_inventory(path)
    env_pw = {"password": None, "password_env": DEVICE_ENV}
    inv = inv.model_copy(update={
        "olts": [o.model_copy(update=env_pw) for o in inv.olts],
        "bngs": [b.model_copy(update={**env_pw, "nas_secret": None, "nas_secret_env": NAS_ENV})
                 for b in inv.bngs],
        "radius": inv.radius.model_copy(update={"secret": None, "secret_env": RADIUS_ENV}),
    })  # fmt: skip
    write_inventory(inv, path)
    text = path.read_text()
    assert all(v not in text for v in values.values()) and DEVICE_ENV in text
    reset_runtime()  # flow runs read the new inventory
    return values


def _api_texts(lc: Lifecycle, tmp_path: Path, sid: str) -> tuple[str, list[tuple[str, str]]]:
    """The JWT key of an API on this database and what it answered to a set of requests."""
    inventory = Path(os.environ["FIBERFLOW_INVENTORY"])
    out: list[tuple[str, str]] = []
    with open_api(lc.database_url, tmp_path / "api", inventory, None) as api:
        op, cust = api.auth(tenant=TENANT), api.auth(role="customer", tenant=TENANT)
        other_key = secrets.token_urlsafe(48)
        forged = issue(other_key, tenant_id=TENANT, role="operator", sub="x",
                       ttl=timedelta(minutes=5))  # fmt: skip
        expired = issue(api.jwt_key, tenant_id=TENANT, role="operator", sub="x",
                        ttl=timedelta(seconds=-60))  # fmt: skip
        none_alg = ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=")
                            for p in ({"alg": "none", "typ": "JWT"},
                                      {"sub": "x", "tenant_id": TENANT, "role": "operator",
                                       "exp": 4102444800})) + "."  # fmt: skip
        bad = {"customer_ref": "c\nenable", "plan": "100M; reload", "olt": "olt-1",
               "pon_port": "0/1/3", "ont_serial": "x" * 5000}  # fmt: skip
        requests = [
            ("GET", "/api/v1/inventory", op, None),
            ("GET", "/healthz", {}, None),
            ("GET", "/metrics", {}, None),
            ("GET", f"{SERVICES}/{sid}", op, None),
            ("GET", f"{SERVICES}/{sid}/events", op, None),
            ("GET", SERVICES, {"Authorization": f"Bearer {forged}"}, None),
            ("GET", SERVICES, {"Authorization": f"Bearer {expired}"}, None),
            ("GET", SERVICES, {"Authorization": f"Bearer {none_alg}"}, None),
            ("GET", SERVICES, {"Authorization": "Bearer not.a.jwt"}, None),
            ("POST", SERVICES, cust, {}),
            ("POST", SERVICES, op, bad),
            ("POST", f"{SERVICES}/{sid}/suspend", op, None),  # terminated: 409
            ("GET", f"{SERVICES}/not-a-service", op, None),
            ("GET", "/portal/login?token=forged." + forged, {}, None),
        ]
        for method, url, headers, body in requests:
            r = api.client.request(method, url, headers=headers, json=body,
                                   follow_redirects=False)  # fmt: skip
            assert r.status_code < 500, (method, url, r.text)
            out.append((f"api {method} {url[:50]} -> {r.status_code}",
                        r.text + repr(dict(r.headers))))  # fmt: skip
        return api.jwt_key, out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_secret_in_logs_audit_events_or_api_answers(
    lifecycle: Lifecycle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    wanted = _use_secrets_from_env(lifecycle, monkeypatch)
    caplog.set_level(logging.DEBUG)

    sid = lifecycle.new_service()
    provision(sid)  # the lab accepted the device password and the RADIUS test login
    svc = lifecycle.service(sid)
    assert svc.status == "active", svc.error
    with Session(lifecycle.engine) as s:
        cleartext = s.scalars(select(RadCheck.value).where(
            RadCheck.username == svc.radius_username,
            RadCheck.attribute == "Cleartext-Password")).one()  # fmt: skip
    wanted["subscriber Cleartext-Password"] = cleartext
    lifecycle.begin(sid, Operation.SUSPENSION)
    suspend(sid)  # CoA with the NAS secret
    lifecycle.begin(sid, Operation.TERMINATION)
    terminate(sid)  # Disconnect-Request, rows removed
    assert lifecycle.service(sid).status == "terminated"

    refused = lifecycle.new_service(olt="olt-2")
    with pytest.raises(Exception):  # noqa: B017 (the login is refused; the type is the driver's)
        provision(refused)
    failed = lifecycle.service(refused)
    assert failed.status == "failed" and failed.error

    jwt_key, answers = _api_texts(lifecycle, tmp_path, sid)
    wanted["JWT key"] = jwt_key
    records = list(caplog.records)
    assert len(records) > 50 and any(r.levelno == logging.DEBUG for r in records)

    texts = [*_log_texts(records), *_db_texts(lifecycle), *answers]
    assert _leaks(texts, wanted) == []
    # The search itself works: each value is found where it is planted.
    planted = [(name, f"...{value}...") for name, value in wanted.items()]
    assert len(_leaks(planted, wanted)) == len(wanted)
