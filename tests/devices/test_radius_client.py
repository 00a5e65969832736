"""RadiusClient over real UDP: auth against the lab RADIUS server, CoA / Disconnect
against the lab NAS (FreeRADIUS itself: tests/devices/test_freeradius.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import Engine

from fiberflow.devices.base import CommandRecord, InvalidInput, TransientDeviceError
from fiberflow.devices.inventory import Bng, InventoryError, RadiusServer
from fiberflow.devices.radius import (
    AuthStatus,
    CoaStatus,
    NasTarget,
    RadiusClient,
    RadiusStore,
    RadiusTimeout,
    nas_target,
    radius_secret,
)
from fiberflow.lab.nas import LabNas
from fiberflow.lab.radius_server import LabRadius
from tests.devices.test_radius_sql import INJECTIONS, PLANS
from tests.fixtures.radius_lab import LAB_NAS_SECRET, LAB_RADIUS_SECRET


def _client(port: int, *, audit: list[CommandRecord] | None = None, **kw: float) -> RadiusClient:
    return RadiusClient(
        "127.0.0.1",
        LAB_RADIUS_SECRET,
        auth_port=port,
        timeout=kw.get("timeout", 1.0),
        retries=int(kw.get("retries", 1)),
        audit=audit.append if audit is not None else lambda _r: None,
    )


def _nas(nas: LabNas, secret: str = LAB_NAS_SECRET) -> NasTarget:
    return NasTarget(name="bng-1", host="127.0.0.1", port=nas.port, secret=secret)


async def test_authenticate_accept_and_reject(engine: Engine, lab_radius: LabRadius) -> None:
    store = RadiusStore(engine)
    store.ensure_groups(PLANS, "WALLED-GARDEN")
    store.activate("alice", "Pw-alice-1", "100.64.0.21", "100M")
    audit: list[CommandRecord] = []
    client = _client(lab_radius.port, audit=audit)

    ok = await asyncio.to_thread(client.authenticate, "alice", "Pw-alice-1")
    assert ok.status is AuthStatus.ACCEPT and ok.accepted
    assert ok.framed_ip == "100.64.0.21"
    assert ok.attributes["Cisco-AVPair"] == (
        "ip:sub-qos-policy-in=PLAN-100M-IN",
        "ip:sub-qos-policy-out=PLAN-100M-OUT",
    )
    wrong = await asyncio.to_thread(client.authenticate, "alice", "not-her-password")
    assert wrong.status is AuthStatus.REJECT and not wrong.accepted
    unknown = await asyncio.to_thread(client.authenticate, "bob", "Pw-bob-1")
    assert unknown.status is AuthStatus.REJECT
    assert [r.output for r in audit] == ["accept", "reject", "reject"]
    assert all("Pw-alice" not in r.command and "not-her" not in r.command for r in audit)


async def test_authenticate_timeout_is_transient(lab_nas: LabNas) -> None:
    # Nothing answers Access-Requests on the NAS port: every try times out.
    client = _client(lab_nas.port, timeout=0.2, retries=1)
    with pytest.raises(RadiusTimeout) as err:
        await asyncio.to_thread(client.authenticate, "alice", "Pw-alice-1")
    assert isinstance(err.value, TransientDeviceError) and err.value.transient


async def test_coa_and_disconnect(lab_nas: LabNas, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    lab_nas.add_session("carol", "100.64.0.30")
    client = _client(1812)
    nas = _nas(lab_nas)
    attrs = {"Cisco-AVPair": ["ip:sub-qos-policy-in=WALLED-GARDEN"], "Cisco-Account-Info": "AWG"}

    ack = await asyncio.to_thread(client.coa, nas, "carol", attrs)
    assert ack.status is CoaStatus.ACK and ack.acked and ack.kind == "coa"
    assert lab_nas.sessions["carol"].attributes == {
        "Cisco-AVPair": ["ip:sub-qos-policy-in=WALLED-GARDEN"],
        "Cisco-Account-Info": ["AWG"],
    }
    nak = await asyncio.to_thread(client.coa, nas, "dave", attrs)
    assert nak.status is CoaStatus.NAK
    assert (nak.error_cause, nak.error_code) == ("Session-Context-Not-Found", 503)
    assert nak.session_not_found and not ack.session_not_found

    bye = await asyncio.to_thread(client.disconnect, nas, "carol")
    assert bye.acked and bye.kind == "disconnect"
    assert "carol" not in lab_nas.sessions
    again = await asyncio.to_thread(client.disconnect, nas, "carol")
    assert again.status is CoaStatus.NAK and again.error_code == 503
    assert LAB_NAS_SECRET not in caplog.text and LAB_RADIUS_SECRET not in caplog.text


async def test_nas_fault_injection(lab_nas: LabNas) -> None:
    lab_nas.add_session("erin")
    lab_nas.nak_users["erin"] = 501
    client = _client(1812, timeout=0.2, retries=0)
    nak = await asyncio.to_thread(client.disconnect, _nas(lab_nas), "erin")
    assert nak.status is CoaStatus.NAK and nak.error_cause == "Administratively-Prohibited"
    assert not nak.session_not_found  # a refusal, not an offline subscriber
    assert "erin" in lab_nas.sessions

    lab_nas.nak_users.clear()
    lab_nas.drop_requests = True
    with pytest.raises(RadiusTimeout):
        await asyncio.to_thread(client.disconnect, _nas(lab_nas), "erin")
    lab_nas.drop_requests = False
    # A wrong secret is dropped by the NAS (RFC 5176): the client times out too.
    with pytest.raises(RadiusTimeout):
        await asyncio.to_thread(client.disconnect, _nas(lab_nas, "wrong-secret"), "erin")
    assert "erin" in lab_nas.sessions


@pytest.mark.parametrize("bad", INJECTIONS)
def test_injection_strings_raise_before_any_packet(bad: str) -> None:
    # Port 9 on loopback: were anything sent, the call would time out, not raise InvalidInput.
    client = _client(9, timeout=0.1, retries=0)
    nas = NasTarget(name="bng-1", host="127.0.0.1", port=9, secret="s")
    calls = [
        lambda: client.authenticate(bad, "pw"),
        lambda: client.authenticate("ok", bad),
        lambda: client.coa(nas, bad, {}),
        lambda: client.coa(nas, "ok", {"Cisco-AVPair": bad}),
        lambda: client.coa(nas, "ok", {bad: "x"}),
        lambda: client.disconnect(nas, bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()


def test_reserved_or_unknown_coa_attributes_are_refused() -> None:
    client = _client(9)
    nas = NasTarget(name="bng-1", host="127.0.0.1", port=9, secret="s")
    for name in ("User-Password", "Message-Authenticator", "No-Such-Attribute"):
        with pytest.raises(InvalidInput):
            client.coa(nas, "ok", {name: "x"})


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    bng = Bng(
        name="bng-1",
        host="127.0.0.1",
        username="lab",
        password="lab",
        ip_pool="100.64.0.0/24",
        nas_port=3799,
        nas_secret_env="FF_TEST_NAS_SECRET",
    )
    with pytest.raises(InventoryError):
        nas_target(bng)
    monkeypatch.setenv("FF_TEST_NAS_SECRET", "from-env")
    target = nas_target(bng)
    assert (target.host, target.port, target.secret) == ("127.0.0.1", 3799, "from-env")
    assert "from-env" not in repr(target)
    server = RadiusServer(secret_env="FF_TEST_RADIUS_SECRET")
    monkeypatch.setenv("FF_TEST_RADIUS_SECRET", "radius-env")
    assert radius_secret(server) == "radius-env"
    assert RadiusClient.from_inventory(server).auth_port == 1812
