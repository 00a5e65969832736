"""The RADIUS driver against real FreeRADIUS (rlm_sql_postgresql reading the test database),
and the lab RADIUS server compared with it on the same rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models.radius import RadCheck, RadGroupReply, RadReply, RadUserGroup
from fiberflow.devices.radius import (
    AuthResult,
    AuthStatus,
    RadiusClient,
    RadiusStore,
    RadiusTimeout,
)
from fiberflow.lab.radius_server import start_radius
from tests.devices.test_radius_sql import PLANS
from tests.fixtures.freeradius import FreeRadius

pytestmark = [pytest.mark.freeradius, pytest.mark.postgres]

WALLED_GARDEN_REPLY = {
    "Framed-IP-Address": ("100.64.1.12",),
    "Cisco-AVPair": ("ip:sub-qos-policy-in=WALLED-GARDEN", "ip:sub-qos-policy-out=WALLED-GARDEN"),
    "Cisco-Account-Info": ("AWALLED-GARDEN",),
}


@pytest.fixture
def fr_engine(freeradius: FreeRadius) -> Iterator[Engine]:
    engine = make_engine(freeradius.database_url)
    with Session(engine) as s, s.begin():
        for model in (RadCheck, RadReply, RadUserGroup, RadGroupReply):
            s.execute(delete(model))
    RadiusStore(engine).ensure_groups(PLANS, "WALLED-GARDEN")
    yield engine
    engine.dispose()


def _client(freeradius: FreeRadius, secret: str | None = None) -> RadiusClient:
    return RadiusClient(
        freeradius.host,
        secret or freeradius.secret,
        auth_port=freeradius.auth_port,
        timeout=2.0,
        retries=1,
    )


def test_accept_after_activation(freeradius: FreeRadius, fr_engine: Engine) -> None:
    RadiusStore(fr_engine).activate("fr-alice", "Pw-alice-1", "100.64.1.10", "100M")
    result = _client(freeradius).authenticate("fr-alice", "Pw-alice-1")
    assert result.status is AuthStatus.ACCEPT, freeradius.log_text()[-3000:]
    assert result.framed_ip == "100.64.1.10"
    assert result.attributes["Cisco-AVPair"] == (
        "ip:sub-qos-policy-in=PLAN-100M-IN",
        "ip:sub-qos-policy-out=PLAN-100M-OUT",
    )
    wrong = _client(freeradius).authenticate("fr-alice", "Pw-wrong-1")
    assert wrong.status is AuthStatus.REJECT
    assert wrong.attributes == {}  # attr_filter.access_reject strips the reply


def test_reject_after_removal(freeradius: FreeRadius, fr_engine: Engine) -> None:
    store = RadiusStore(fr_engine)
    store.activate("fr-bob", "Pw-bob-1", "100.64.1.11", "1G")
    assert _client(freeradius).authenticate("fr-bob", "Pw-bob-1").accepted
    store.remove("fr-bob")
    assert _client(freeradius).authenticate("fr-bob", "Pw-bob-1").status is AuthStatus.REJECT


def test_walled_garden_reply_after_suspension(freeradius: FreeRadius, fr_engine: Engine) -> None:
    store = RadiusStore(fr_engine)
    store.activate("fr-carol", "Pw-carol-1", "100.64.1.12", "100M")
    store.set_group("fr-carol", "suspended")
    result = _client(freeradius).authenticate("fr-carol", "Pw-carol-1")
    assert result.accepted
    assert dict(result.attributes) == WALLED_GARDEN_REPLY
    store.set_group("fr-carol", "100M")
    resumed = _client(freeradius).authenticate("fr-carol", "Pw-carol-1")
    assert "Cisco-Account-Info" not in resumed.attributes


def test_wrong_secret_times_out(freeradius: FreeRadius) -> None:
    client = RadiusClient(
        freeradius.host, "not-the-secret", auth_port=freeradius.auth_port, timeout=0.3, retries=0
    )
    with pytest.raises(RadiusTimeout):
        client.authenticate("fr-alice", "Pw-alice-1")


def _picture(result: AuthResult) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    return result.status.value, sorted(result.attributes.items())


async def test_lab_radius_answers_like_freeradius(
    freeradius: FreeRadius, fr_engine: Engine
) -> None:
    store = RadiusStore(fr_engine)
    store.activate("cmp-plan", "Pw-cmp-1", "100.64.1.20", "1G", netmask="255.255.255.255")
    store.activate("cmp-susp", "Pw-cmp-2", "100.64.1.21", "100M")
    store.set_group("cmp-susp", "suspended")
    store.activate("cmp-gone", "Pw-cmp-3", "100.64.1.22", "100M")
    store.remove("cmp-gone")
    # Hand-written rows: operators, a user reply overriding a group reply, two groups.
    with Session(fr_engine) as s, s.begin():
        s.add(RadCheck(username="cmp-hand", attribute="Cleartext-Password", op=":=", value="Pw-4"))
        s.add(RadReply(username="cmp-hand", attribute="Session-Timeout", op=":=", value="300"))
        s.add(
            RadReply(username="cmp-hand", attribute="Framed-IP-Address", op="=", value="10.0.0.9")
        )
        s.add(RadUserGroup(username="cmp-hand", groupname="g-low", priority=2))
        s.add(RadUserGroup(username="cmp-hand", groupname="g-high", priority=1))
        s.add(RadGroupReply(groupname="g-high", attribute="Idle-Timeout", op=":=", value="600"))
        s.add(RadGroupReply(groupname="g-high", attribute="Session-Timeout", op="=", value="9"))
        s.add(RadGroupReply(groupname="g-low", attribute="Reply-Message", op=":=", value="low"))
        # Fall-Through = Yes in the first group makes rlm_sql read the second one too.
        s.add(RadCheck(username="cmp-fall", attribute="Cleartext-Password", op=":=", value="Pw-5"))
        s.add(RadUserGroup(username="cmp-fall", groupname="g-fall", priority=1))
        s.add(RadUserGroup(username="cmp-fall", groupname="g-low", priority=2))
        s.add(RadGroupReply(groupname="g-fall", attribute="Fall-Through", op="=", value="Yes"))
        s.add(RadGroupReply(groupname="g-fall", attribute="Reply-Message", op="=", value="fall"))
        s.add(RadGroupReply(groupname="g-fall", attribute="Idle-Timeout", op="=", value="5"))
    cases = [
        ("cmp-plan", "Pw-cmp-1"),
        ("cmp-plan", "Pw-wrong"),
        ("cmp-susp", "Pw-cmp-2"),
        ("cmp-gone", "Pw-cmp-3"),
        ("cmp-hand", "Pw-4"),
        ("cmp-fall", "Pw-5"),
        ("nobody", "Pw-x"),
    ]
    lab = await start_radius(secret="lab-secret", engine=fr_engine)
    try:
        real = _client(freeradius)
        ours = RadiusClient("127.0.0.1", "lab-secret", auth_port=lab.port, timeout=2, retries=1)
        for username, password in cases:
            want = await asyncio.to_thread(real.authenticate, username, password)
            got = await asyncio.to_thread(ours.authenticate, username, password)
            assert _picture(got) == _picture(want), (username, password)
    finally:
        await lab.close()
