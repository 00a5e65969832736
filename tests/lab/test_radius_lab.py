"""The lab RADIUS server and lab NAS: SQL semantics, sessions, and FreeRADIUS's radclient."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.migrate import upgrade
from fiberflow.core.db.models.radius import RadCheck, RadGroupReply, RadReply, RadUserGroup
from fiberflow.devices.radius import SUSPENDED_GROUP, NasTarget, RadiusClient, RadiusStore
from fiberflow.lab.nas import LabNas, start_nas
from fiberflow.lab.radius_server import LabRadius, authorize, merge, start_radius
from tests.devices.test_radius_sql import PLANS
from tests.fixtures.databases import require_or_skip
from tests.fixtures.radius_lab import LAB_NAS_SECRET, LAB_RADIUS_SECRET


def test_merge_follows_freeradius_operators() -> None:
    reply: list[tuple[str, str]] = [("Framed-IP-Address", "100.64.0.1")]
    merge(reply, "Framed-IP-Address", "=", "100.64.0.2")  # present: ignored
    merge(reply, "Session-Timeout", "=", "60")  # absent: added
    merge(reply, "Cisco-AVPair", "+=", "a=1")
    merge(reply, "Cisco-AVPair", "+=", "b=2")  # appended
    merge(reply, "Session-Timeout", ":=", "120")  # replaced
    assert reply == [
        ("Framed-IP-Address", "100.64.0.1"),
        ("Cisco-AVPair", "a=1"),
        ("Cisco-AVPair", "b=2"),
        ("Session-Timeout", "120"),
    ]


def test_authorize_reads_user_then_groups_by_priority(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(RadCheck(username="u1", attribute="Cleartext-Password", op=":=", value="pw1"))
        s.add(RadReply(username="u1", attribute="Session-Timeout", op=":=", value="300"))
        s.add(RadUserGroup(username="u1", groupname="low", priority=2))
        s.add(RadUserGroup(username="u1", groupname="high", priority=1))
        s.add(RadGroupReply(groupname="low", attribute="Session-Timeout", op="=", value="9"))
        s.add(RadGroupReply(groupname="low", attribute="Idle-Timeout", op="=", value="1"))
        s.add(RadGroupReply(groupname="high", attribute="Idle-Timeout", op=":=", value="2"))
        # A group membership without a password: rejected like FreeRADIUS does.
        s.add(RadUserGroup(username="u2", groupname="high", priority=1))
    ok = authorize(engine, "u1", "pw1")
    assert ok.accept
    # Only the first group: "low" would need Fall-Through = Yes in "high" (rlm_sql).
    assert ok.reply == [("Session-Timeout", "300"), ("Idle-Timeout", "2")]
    with Session(engine) as s, s.begin():
        s.add(RadGroupReply(groupname="high", attribute="Fall-Through", op="=", value="Yes"))
    both = authorize(engine, "u1", "pw1")
    assert both.reply == [("Session-Timeout", "300"), ("Idle-Timeout", "2")]
    with Session(engine) as s, s.begin():
        s.add(RadGroupReply(groupname="low", attribute="Filter-Id", op="=", value="f1"))
    assert authorize(engine, "u1", "pw1").reply[-1] == ("Filter-Id", "f1")
    assert not authorize(engine, "u1", "pw2").accept
    assert not authorize(engine, "u2", "anything").accept
    assert authorize(engine, "nobody", "x").reason == "user not found"


async def test_nas_opens_a_session_for_users_radius_accepts(
    engine: Engine, lab_radius: LabRadius, lab_nas: LabNas
) -> None:
    lab_nas.follow(lab_radius)
    store = RadiusStore(engine)
    store.ensure_groups(PLANS, "WALLED-GARDEN")
    store.activate("frank", "Pw-frank-1", "100.64.0.40", "1G")
    client = RadiusClient("127.0.0.1", LAB_RADIUS_SECRET, auth_port=lab_radius.port, timeout=1)
    nas = NasTarget("bng-1", "127.0.0.1", lab_nas.port, LAB_NAS_SECRET)

    assert not (await asyncio.to_thread(client.coa, nas, "frank", {})).acked
    assert (await asyncio.to_thread(client.authenticate, "frank", "Pw-frank-1")).accepted
    assert lab_nas.sessions["frank"].framed_ip == "100.64.0.40"

    store.set_group("frank", SUSPENDED_GROUP)
    auth = await asyncio.to_thread(client.authenticate, "frank", "Pw-frank-1")
    assert auth.attributes["Cisco-Account-Info"] == ("AWALLED-GARDEN",)
    assert (await asyncio.to_thread(client.coa, nas, "frank", auth.attributes)).acked
    assert (await asyncio.to_thread(client.disconnect, nas, "frank")).acked
    assert lab_nas.sessions == {}


async def test_radius_fault_injection_rejects(engine: Engine, lab_radius: LabRadius) -> None:
    RadiusStore(engine).activate("gina", "Pw-gina-1", "100.64.0.41", "100M")
    client = RadiusClient("127.0.0.1", LAB_RADIUS_SECRET, auth_port=lab_radius.port, timeout=1)
    assert (await asyncio.to_thread(client.authenticate, "gina", "Pw-gina-1")).accepted
    lab_radius.reject_users.add("gina")
    assert not (await asyncio.to_thread(client.authenticate, "gina", "Pw-gina-1")).accepted


async def _radclient(port: int, kind: str, username: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "radclient",
        "-x",
        "-r",
        "1",
        "-t",
        "3",
        f"127.0.0.1:{port}",
        kind,
        LAB_NAS_SECRET,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(f'User-Name = "{username}"\n'.encode())
    return proc.returncode or 0, out.decode()


async def test_lab_nas_answers_freeradius_radclient(lab_nas: LabNas) -> None:
    require_or_skip(shutil.which("radclient") is not None, "radclient (Debian freeradius-utils)")
    lab_nas.add_session("hank", "100.64.0.42")

    code, out = await _radclient(lab_nas.port, "coa", "hank")
    assert code == 0 and "Received CoA-ACK" in out, out
    code, out = await _radclient(lab_nas.port, "disconnect", "hank")
    assert code == 0 and "Received Disconnect-ACK" in out, out
    code, out = await _radclient(lab_nas.port, "disconnect", "hank")
    assert "Received Disconnect-NAK" in out, out
    assert "Error-Cause = Session-Context-Not-Found" in out, out


async def test_starters_with_a_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    upgrade(url)
    engine = make_engine(url)
    RadiusStore(engine).activate("ivy", "Pw-ivy-1", "100.64.0.50", "100M")
    engine.dispose()
    radius = await start_radius(secret="lab", database_url=url)
    nas = await start_nas(secret="lab", radius=radius)
    try:
        assert radius.port != nas.port
        client = RadiusClient("127.0.0.1", "lab", auth_port=radius.port, timeout=1)
        assert (await asyncio.to_thread(client.authenticate, "ivy", "Pw-ivy-1")).accepted
        target = NasTarget("bng-1", "127.0.0.1", nas.port, "lab")
        assert (await asyncio.to_thread(client.disconnect, target, "ivy")).acked
        assert [r.kind for r in nas.requests] == ["disconnect"]
    finally:
        await nas.close()
        await radius.close()
