"""Lab RADIUS auth server: answers PAP Access-Requests from FreeRADIUS's own SQL tables.

It reads what FreeRADIUS's ``sql`` module reads, the way it reads it, so the demo needs
no FreeRADIUS and tests can compare the two (tests/devices/lab/test_radius_lab.py):

1. ``radcheck`` rows of the user; the ``Cleartext-Password`` one is the known-good
   password (PAP). No rows and no groups: Access-Reject (user not found).
2. ``radreply`` rows of the user, then ``radgroupreply`` rows of the ``radusergroup``
   groups in priority order, merged with FreeRADIUS's operators: ``=`` adds an attribute
   that is not yet in the reply, ``:=`` replaces it, ``+=`` appends. Like rlm_sql
   (``read_groups = yes``), only the first group is read unless its reply says
   ``Fall-Through = Yes``; a user reply with ``Fall-Through = No`` skips the groups.
   Fall-Through itself is internal and never sent.

Simplifications (a lab): other radcheck / radgroupcheck items are not evaluated, there
is no accounting port, and only Access-Request is answered. Rows naming an attribute
the shipped dictionary lacks are skipped with a warning. Every accepted user is handed
to ``on_accept`` listeners: the lab NAS uses that to open a session (see RADIUS.md).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyrad import packet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models.radius import RadCheck, RadGroupReply, RadReply, RadUserGroup
from fiberflow.devices.radius.dictionary import load_dictionary
from fiberflow.lab.radius_udp import Address, UdpService

logger = logging.getLogger(__name__)

FALL_THROUGH = "Fall-Through"
_INTEGER_TYPES = frozenset({"integer", "short", "byte", "signed", "date", "integer64"})

Reply = list[tuple[str, str]]
AcceptListener = Callable[[str, Reply], None]


@dataclass
class Decision:
    accept: bool
    reply: Reply = field(default_factory=list)
    reason: str = ""


def merge(reply: Reply, attribute: str, op: str, value: str) -> None:
    """FreeRADIUS's pairmove for reply items (``=`` / ``:=`` / ``+=``)."""
    present = any(name == attribute for name, _ in reply)
    if op == ":=":
        reply[:] = [(n, v) for n, v in reply if n != attribute]
        reply.append((attribute, value))
    elif op == "+=" or (op == "=" and not present):
        reply.append((attribute, value))


def authorize(engine: Engine, username: str, password: str) -> Decision:
    """What FreeRADIUS with rlm_sql + PAP would answer for these rows."""
    with Session(engine) as s:
        checks = s.scalars(
            select(RadCheck).where(RadCheck.username == username).order_by(RadCheck.id)
        ).all()
        groups = s.scalars(
            select(RadUserGroup.groupname)
            .where(RadUserGroup.username == username)
            .order_by(RadUserGroup.priority, RadUserGroup.id)
        ).all()
        if not checks and not groups:
            return Decision(False, reason="user not found")
        known = next((c.value for c in checks if c.attribute == "Cleartext-Password"), None)
        if known is None:
            return Decision(False, reason="no known good password")
        if not hmac.compare_digest(known.encode(), password.encode()):
            return Decision(False, reason="wrong password")
        reply: Reply = []
        rows = s.scalars(
            select(RadReply).where(RadReply.username == username).order_by(RadReply.id)
        ).all()
        fall_through = _fall_through(rows)
        _merge_rows(reply, rows)
        for group in groups:
            if fall_through is False:
                break
            group_rows = s.scalars(
                select(RadGroupReply)
                .where(RadGroupReply.groupname == group)
                .order_by(RadGroupReply.id)
            ).all()
            _merge_rows(reply, group_rows)
            # rlm_sql reads the next group only when this one says Fall-Through = Yes.
            fall_through = _fall_through(group_rows) is True
    return Decision(True, reply)


def _fall_through(rows: Sequence[RadReply] | Sequence[RadGroupReply]) -> bool | None:
    for row in rows:
        if row.attribute == FALL_THROUGH:
            return row.value.strip().lower() in ("yes", "1", "true")
    return None


def _merge_rows(reply: Reply, rows: Sequence[RadReply] | Sequence[RadGroupReply]) -> None:
    for row in rows:
        if row.attribute != FALL_THROUGH:
            merge(reply, row.attribute, row.op, row.value)


class LabRadius(UdpService):
    """The running lab RADIUS server. ``reject_users``: fault injection (always Reject)."""

    kind = "radius"

    def __init__(self, secret: str, engine: Engine, *, own_engine: bool) -> None:
        super().__init__(secret)
        self.engine = engine
        self._own_engine = own_engine
        self.reject_users: set[str] = set()
        self.on_accept: list[AcceptListener] = []

    async def handle(self, data: bytes, addr: Address) -> bytes | None:
        req = packet.AuthPacket(packet=data, secret=self.secret, dict=load_dictionary())
        if req.code != packet.AccessRequest:
            return None
        if req.message_authenticator and not req.verify_message_authenticator():
            logger.warning("lab radius: bad Message-Authenticator", extra={"client": addr[0]})
            return None
        username = _first_text(req, "User-Name")
        raw_password = req.get(2)  # User-Password, still encrypted
        if username is None or not raw_password:
            return self._reply(req, Decision(False, reason="no User-Name / User-Password"))
        password = req.PwDecrypt(raw_password[0])
        if username in self.reject_users:
            decision = Decision(False, reason="rejected (fault injection)")
        else:
            decision = await asyncio.to_thread(authorize, self.engine, username, password)
        if decision.accept:
            for listener in self.on_accept:
                listener(username, decision.reply)
        logger.info(
            "lab radius %s",
            "accept" if decision.accept else "reject",
            extra={"username": username, "reason": decision.reason},
        )
        return self._reply(req, decision)

    def _reply(self, req: packet.AuthPacket, decision: Decision) -> bytes:
        reply = req.CreateReply()
        reply.code = packet.AccessAccept if decision.accept else packet.AccessReject
        attributes = load_dictionary().attributes
        for name, value in decision.reply:
            if name not in attributes:
                logger.warning("lab radius: attribute not in dictionary", extra={"attr": name})
                continue
            typed: str | int = value
            if attributes[name].type in _INTEGER_TYPES and value.isdigit():
                typed = int(value)
            reply.AddAttribute(name, typed)
        data: bytes = reply.ReplyPacket()
        return data

    async def close(self) -> None:
        await super().close()
        if self._own_engine:
            self.engine.dispose()


def _first_text(pkt: packet.Packet, name: str) -> str | None:
    values = pkt.get(name)
    if not values:
        return None
    value = values[0]
    return value if isinstance(value, str) else None


async def start_radius(
    host: str = "127.0.0.1",
    port: int = 0,
    secret: str = "lab",
    database_url: str | None = None,
    *,
    engine: Engine | None = None,
) -> LabRadius:
    """Start the lab RADIUS server on ``host:port`` (0 = a free port) reading the database.

    Give ``database_url`` (the server owns and disposes its engine) or an ``engine``.
    """
    if engine is None:
        if database_url is None:
            raise ValueError("start_radius needs database_url or engine")
        server = LabRadius(secret, make_engine(database_url), own_engine=True)
    else:
        server = LabRadius(secret, engine, own_engine=False)
    await server.listen(host, port)
    return server
