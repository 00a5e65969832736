"""Typed values the RADIUS driver returns: subscriber rows, auth and CoA outcomes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from fiberflow.devices.base import TransientDeviceError

#: The radusergroup group of a suspended subscriber; its radgroupreply rows put the
#: session in the walled garden.
SUSPENDED_GROUP = "suspended"

#: RFC 5176 Error-Cause 503, Session-Context-Not-Found: the NAS has no session for the
#: user (the subscriber is offline), so there was nothing to change or end.
SESSION_NOT_FOUND = 503

#: Reply attributes by name; every value as text (integers and enumerated values as
#: their dictionary names, e.g. ``Error-Cause: ("Session-Context-Not-Found",)``).
Attributes = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class ReplyAttribute:
    """One radreply / radgroupreply row: ``attribute op value``."""

    attribute: str
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class RadiusSubscriber:
    """What the SQL tables hold for one username (for drift checks)."""

    username: str
    password: str | None = field(repr=False)
    ip_address: str | None
    netmask: str | None
    #: radusergroup groups, highest priority (lowest number) first.
    groups: tuple[str, ...]
    #: radreply rows other than Framed-IP-Address / Framed-IP-Netmask.
    extra_reply: tuple[ReplyAttribute, ...] = ()

    @property
    def group(self) -> str | None:
        return self.groups[0] if self.groups else None

    @property
    def suspended(self) -> bool:
        return SUSPENDED_GROUP in self.groups


class AuthStatus(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Access-Accept (with its reply attributes) or Access-Reject."""

    status: AuthStatus
    attributes: Attributes = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status is AuthStatus.ACCEPT

    @property
    def framed_ip(self) -> str | None:
        values = self.attributes.get("Framed-IP-Address", ())
        return values[0] if values else None

    @property
    def reply_message(self) -> str | None:
        values = self.attributes.get("Reply-Message", ())
        return values[0] if values else None


class CoaStatus(enum.Enum):
    ACK = "ack"
    NAK = "nak"


@dataclass(frozen=True, slots=True)
class CoaResult:
    """CoA-ACK / Disconnect-ACK, or a NAK with its Error-Cause (RFC 5176 section 3.5)."""

    status: CoaStatus
    #: "coa" or "disconnect"
    kind: str
    #: Error-Cause as its dictionary name, e.g. "Session-Context-Not-Found".
    error_cause: str | None = None
    #: Error-Cause as a number, e.g. 503.
    error_code: int | None = None
    attributes: Attributes = field(default_factory=dict)

    @property
    def acked(self) -> bool:
        return self.status is CoaStatus.ACK

    @property
    def session_not_found(self) -> bool:
        """A NAK because the user has no session: nothing to change, not a refusal."""
        return self.status is CoaStatus.NAK and self.error_code == SESSION_NOT_FOUND


@dataclass(frozen=True, slots=True)
class NasTarget:
    """Where CoA / Disconnect go: a BNG's RFC 5176 dynamic-author port."""

    name: str
    host: str
    port: int
    secret: str = field(repr=False)


class RadiusTimeout(TransientDeviceError):
    """No valid reply after every retry. Transient: the caller (a task) may retry."""
