"""Lab NAS: answers RFC 5176 CoA-Request / Disconnect-Request like a BNG would.

Sessions live in memory (``sessions``, by username). A request naming a known session
(by User-Name, or Framed-IP-Address) gets an ACK: a CoA stores its attributes on the
session, a Disconnect ends it. Anything else gets a NAK with ``Error-Cause =
Session-Context-Not-Found`` (503); a request naming no session at all gets
``Missing-Attribute`` (402). Requests with a bad authenticator (wrong secret) are
dropped silently, as RFC 5176 section 3.5 asks.

Sessions appear by ``add_session`` (the admin way), or by themselves when the NAS is
started with ``radius=`` a LabRadius in the same process: every Access-Accept opens a
session with the accepted Framed-IP-Address, as a real BNG does after authenticating a
subscriber. Fault injection: ``drop_requests`` (no answer: the client times out),
``nak_users`` (username -> Error-Cause number to NAK every request with),
``nak_coa_users`` (the same for CoA-Requests only: a NAS that cannot change a session's
policies in place but still ends it on a Disconnect-Request) and ``drop_coa_users``
(CoA-Requests of these users go unanswered; Disconnect-Requests are answered).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pyrad import packet

from fiberflow.devices.radius.dictionary import load_dictionary
from fiberflow.devices.radius.types import SESSION_NOT_FOUND
from fiberflow.lab.radius_server import LabRadius, Reply
from fiberflow.lab.radius_udp import Address, UdpService

logger = logging.getLogger(__name__)

MISSING_ATTRIBUTE = 402


@dataclass
class LabSession:
    username: str
    framed_ip: str | None = None
    #: Attributes the last CoA pushed (name -> values).
    attributes: dict[str, list[str]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


@dataclass(frozen=True)
class NasRequest:
    """One request the NAS answered (for tests and the lab's own log)."""

    kind: str  # "coa" or "disconnect"
    username: str | None
    attributes: dict[str, list[str]]
    acked: bool
    error_cause: int | None


class LabNas(UdpService):
    kind = "nas"

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.sessions: dict[str, LabSession] = {}
        self.nak_users: dict[str, int] = {}
        self.nak_coa_users: dict[str, int] = {}
        self.drop_coa_users: set[str] = set()
        self.requests: list[NasRequest] = []

    # -- admin ------------------------------------------------------------------------
    def add_session(self, username: str, framed_ip: str | None = None) -> LabSession:
        session = LabSession(username, framed_ip)
        self.sessions[username] = session
        logger.info("lab nas session up", extra={"username": username, "framed_ip": framed_ip})
        return session

    def remove_session(self, username: str) -> bool:
        return self.sessions.pop(username, None) is not None

    def follow(self, radius: LabRadius) -> None:
        """Open a session for every user the lab RADIUS server accepts."""
        radius.on_accept.append(self._on_accept)

    def _on_accept(self, username: str, reply: Reply) -> None:
        ip = next((v for n, v in reply if n == "Framed-IP-Address"), None)
        self.add_session(username, ip)

    # -- protocol ---------------------------------------------------------------------
    async def handle(self, data: bytes, addr: Address) -> bytes | None:
        req = packet.CoAPacket(packet=data, secret=self.secret, dict=load_dictionary())
        if req.code not in (packet.CoARequest, packet.DisconnectRequest):
            return None
        if not req.VerifyCoARequest():
            logger.warning("lab nas: bad request authenticator", extra={"client": addr[0]})
            return None
        if req.message_authenticator and not req.verify_message_authenticator():
            return None
        disconnect = req.code == packet.DisconnectRequest
        attrs = _attributes(req)
        username = attrs.pop("User-Name", [None])[0]
        framed_ip = attrs.get("Framed-IP-Address", [None])[0]
        if not disconnect and username is not None and username in self.drop_coa_users:
            logger.info("lab nas dropped a CoA (fault injection)", extra={"username": username})
            return None
        session = self._find(username, framed_ip)
        cause: int | None = None
        if username is not None and username in self.nak_users:
            cause = self.nak_users[username]
        elif username is not None and not disconnect and username in self.nak_coa_users:
            cause = self.nak_coa_users[username]
        elif username is None and framed_ip is None:
            cause = MISSING_ATTRIBUTE
        elif session is None:
            cause = SESSION_NOT_FOUND
        elif disconnect:
            del self.sessions[session.username]
        else:
            session.attributes.update(attrs)
        reply = req.CreateReply()
        if cause is not None:
            reply.code = packet.DisconnectNAK if disconnect else packet.CoANAK
            reply.AddAttribute("Error-Cause", cause)
        kind = "disconnect" if disconnect else "coa"
        self.requests.append(NasRequest(kind, username, attrs, cause is None, cause))
        logger.info(
            "lab nas %s %s",
            kind,
            "ack" if cause is None else "nak",
            extra={"username": username, "error_cause": cause},
        )
        data_out: bytes = reply.ReplyPacket()
        return data_out

    def _find(self, username: str | None, framed_ip: str | None) -> LabSession | None:
        if username is not None:
            return self.sessions.get(username)
        return next((s for s in self.sessions.values() if s.framed_ip == framed_ip), None)


def _attributes(pkt: packet.Packet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in pkt.keys():  # noqa: SIM118  (pyrad's keys() decodes codes to names)
        if isinstance(key, str) and key != "Message-Authenticator":
            out[key] = [str(v) for v in pkt[key]]
    return out


async def start_nas(
    host: str = "127.0.0.1",
    port: int = 0,
    secret: str = "lab",
    *,
    radius: LabRadius | None = None,
) -> LabNas:
    """Start the lab NAS on ``host:port`` (0 = a free port).

    With ``radius=``, users that lab RADIUS server accepts get a session here.
    """
    nas = LabNas(secret)
    if radius is not None:
        nas.follow(radius)
    await nas.listen(host, port)
    return nas
