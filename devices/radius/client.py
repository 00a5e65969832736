"""pyrad client: Access-Request (PAP), CoA-Request and Disconnect-Request (RFC 5176).

Blocking (pyrad's Client); call it from a worker thread, not from an event loop.
Timeouts: after ``retries + 1`` sends without a valid reply the call raises
RadiusTimeout (a devices.base.TransientDeviceError, so a Prefect task may retry it);
answers are typed (AuthResult: ACCEPT / REJECT, CoaResult: ACK / NAK + Error-Cause).
Secrets are passed in by the caller (read from the environment via the inventory, see
``nas_target`` / ``radius_secret``), never logged and never part of an audit record.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence

from pyrad import packet
from pyrad.client import Client, Timeout

from fiberflow.devices import validation
from fiberflow.devices.base import (
    AuditSink,
    CommandRecord,
    InvalidInput,
    TransientDeviceError,
    no_audit,
)
from fiberflow.devices.inventory import Bng, InventoryError, RadiusServer
from fiberflow.devices.radius.dictionary import is_known, load_dictionary
from fiberflow.devices.radius.types import (
    Attributes,
    AuthResult,
    AuthStatus,
    CoaResult,
    CoaStatus,
    NasTarget,
    RadiusTimeout,
)

logger = logging.getLogger(__name__)

# Attributes a caller may not set in a CoA: they identify or authenticate the packet.
_RESERVED = frozenset({"User-Name", "User-Password", "Message-Authenticator", "Proxy-State"})


def _env_secret(value: str | None, env: str | None, what: str) -> str:
    if value is not None:
        return value
    if env is None:
        raise InventoryError(f"{what}: no secret configured (set secret_env)")
    secret = os.environ.get(env)
    if secret is None:
        raise InventoryError(f"{what}: environment variable {env} is not set")
    return secret


def radius_secret(server: RadiusServer) -> str:
    """The RADIUS server's shared secret, read from the environment when needed."""
    return _env_secret(server.secret, server.secret_env, "radius")


def nas_target(bng: Bng) -> NasTarget:
    """The BNG's CoA / Disconnect endpoint with its secret (from ``nas_secret_env``)."""
    secret = _env_secret(bng.nas_secret, bng.nas_secret_env, f"bngs.{bng.name}.nas_secret")
    return NasTarget(name=bng.name, host=bng.nas_host, port=bng.nas_port, secret=secret)


class RadiusClient:
    """Talks RADIUS to one server (auth) and to any NAS (CoA / Disconnect)."""

    def __init__(
        self,
        host: str,
        secret: str,
        *,
        auth_port: int = 1812,
        timeout: float = 3.0,
        retries: int = 2,
        name: str = "radius",
        audit: AuditSink = no_audit,
    ) -> None:
        self.host = host
        self.auth_port = auth_port
        self._secret = validation.radius_secret(secret).encode()
        self.timeout = timeout
        self.retries = retries
        self.name = name
        self._audit = audit

    @classmethod
    def from_inventory(cls, server: RadiusServer, *, audit: AuditSink = no_audit) -> RadiusClient:
        return cls(
            server.host,
            radius_secret(server),
            auth_port=server.auth_port,
            timeout=server.timeout,
            retries=server.retries,
            audit=audit,
        )

    def _client(
        self, host: str, secret: bytes, *, auth_port: int = 1812, coa_port: int = 3799
    ) -> Client:
        # pyrad's ``retries`` is the total number of sends.
        return Client(
            server=host,
            authport=auth_port,
            coaport=coa_port,
            secret=secret,
            dict=load_dictionary(),
            retries=self.retries + 1,
            timeout=self.timeout,
        )

    def authenticate(self, username: str, password: str) -> AuthResult:
        """Access-Request with PAP; ACCEPT with the reply attributes, or REJECT."""
        username = validation.username(username)
        password = validation.radius_password(password)
        client = self._client(self.host, self._secret, auth_port=self.auth_port)
        req = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=username)
        req["User-Password"] = req.PwCrypt(password)
        req["NAS-Identifier"] = "fiberflow"
        command = f"Access-Request User-Name={username}"
        started = time.monotonic()
        reply = self._send(client, req, self.name, command)
        status = AuthStatus.ACCEPT if reply.code == packet.AccessAccept else AuthStatus.REJECT
        result = AuthResult(status=status, attributes=decode_attributes(reply))
        self._record(self.name, command, status.value, True, started)
        return result

    def coa(
        self, nas: NasTarget, username: str, attributes: Mapping[str, str | Sequence[str]]
    ) -> CoaResult:
        """CoA-Request for the user's session, carrying ``attributes`` (name -> value(s))."""
        return self._dynamic_author(nas, username, attributes, disconnect=False)

    def disconnect(self, nas: NasTarget, username: str) -> CoaResult:
        """Disconnect-Request for the user's session."""
        return self._dynamic_author(nas, username, {}, disconnect=True)

    def _dynamic_author(
        self,
        nas: NasTarget,
        username: str,
        attributes: Mapping[str, str | Sequence[str]],
        *,
        disconnect: bool,
    ) -> CoaResult:
        username = validation.username(username)
        pairs = _checked_attributes(attributes)
        secret = validation.radius_secret(nas.secret).encode()
        kind = "disconnect" if disconnect else "coa"
        client = self._client(nas.host, secret, coa_port=nas.port)
        code = packet.DisconnectRequest if disconnect else packet.CoARequest
        req = client.CreateCoAPacket(code=code, User_Name=username)
        for name, value in pairs:
            req.AddAttribute(name, value)
        shown = " ".join(f"{n}={v}" for n, v in pairs)
        command = f"{'Disconnect' if disconnect else 'CoA'}-Request User-Name={username} {shown}"
        started = time.monotonic()
        reply = self._send(client, req, nas.name, command.strip())
        acked = reply.code in (packet.CoAACK, packet.DisconnectACK)
        attrs = decode_attributes(reply)
        cause = attrs.get("Error-Cause", (None,))[0]
        result = CoaResult(
            status=CoaStatus.ACK if acked else CoaStatus.NAK,
            kind=kind,
            error_cause=cause,
            error_code=_error_code(cause),
            attributes=attrs,
        )
        output = result.status.value + (f" Error-Cause={cause}" if cause else "")
        self._record(nas.name, command.strip(), output, acked, started)
        return result

    def _send(self, client: Client, req: packet.Packet, device: str, command: str) -> packet.Packet:
        started = time.monotonic()
        try:
            reply: packet.Packet = client.SendPacket(req)
            return reply
        except Timeout:
            self._record(device, command, "timeout", False, started)
            raise RadiusTimeout(
                device, f"no reply after {self.retries + 1} tries of {self.timeout:g}s"
            ) from None
        except OSError as exc:
            self._record(device, command, f"error {exc.strerror}", False, started)
            raise TransientDeviceError(device, f"socket error: {exc.strerror}") from None
        finally:
            client._CloseSocket()  # pyrad keeps the socket otherwise

    def _record(
        self, device: str, command: str, output: str, ok: bool, started: float | None = None
    ) -> None:
        duration = (time.monotonic() - started) * 1000 if started is not None else 0.0
        logger.info("radius %s", output, extra={"device": device, "command": command, "ok": ok})
        self._audit(CommandRecord(device, command, output, ok, duration))


def _checked_attributes(attributes: Mapping[str, str | Sequence[str]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, values in attributes.items():
        name = validation.radius_attribute(name)
        if name in _RESERVED or not is_known(name):
            raise InvalidInput("attribute", name, "not a settable attribute of the dictionary")
        for value in (values,) if isinstance(values, str) else values:
            pairs.append((name, validation.radius_value(name, value)))
    return pairs


def decode_attributes(pkt: packet.Packet) -> Attributes:
    """Every attribute of a packet as text values, by dictionary name (no authenticators)."""
    out: dict[str, tuple[str, ...]] = {}
    # pyrad's keys() decodes attribute codes to names; plain iteration would not.
    for key in pkt.keys():  # noqa: SIM118
        if not isinstance(key, str) or key == "Message-Authenticator":
            continue  # undecodable (unknown) attributes come back as numeric keys
        out[key] = tuple(_text(v) for v in pkt[key])
    return out


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _error_code(cause: str | None) -> int | None:
    if cause is None:
        return None
    if cause.isdigit():
        return int(cause)
    values = load_dictionary().attributes["Error-Cause"].values
    if not values.HasForward(cause):
        return None
    return int.from_bytes(values.GetForward(cause), "big")
