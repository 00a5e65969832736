"""Huawei SmartAX (MA5600T/MA5800) GPON OLT driver over netmiko ``huawei_olt``.

Every operation validates all of its input first (InvalidInput, no connection opened),
then opens ONE SSH session, and always closes it; inside ``held()`` consecutive
operations share one session instead (devices/cli_session.py ``SessionHolder``).
Success is judged by parsing what the OLT printed; failure lines become typed errors
(devices.olt.errors). Writes are idempotent: repeating a completed call returns
``Result(changed=False)``.

ONT ids: ``add_ont(..., ont_id=None)`` lets the driver pick the lowest free id on the
port (in the same session); ``find_free_ont_id`` exposes the same choice.

A write renders its configuration lines first (huawei_lines.py: what is sent in config
mode, ``interface gpon F/S`` and ``quit`` included), then sends
exactly those; ``dry_run=True`` makes the same reads and returns the lines unsent
(``Result.lines``). ``config``/``return`` are mode changes, not lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from fiberflow.devices import validation as v
from fiberflow.devices.base import AuditSink, InvalidInput, Result, no_audit
from fiberflow.devices.cli_session import CliSession, SessionHolder, open_session
from fiberflow.devices.inventory import Olt
from fiberflow.devices.olt import parsing
from fiberflow.devices.olt.autofind import NO_AUTOFIND, AutofindOnt, parse_autofind
from fiberflow.devices.olt.errors import (
    OltCommandFailed,
    OntIdInUse,
    OntNotFound,
    OntSerialExists,
    failure_line,
    raise_for_failure,
)
from fiberflow.devices.olt.fleet import OltFleet
from fiberflow.devices.olt.huawei_lines import (
    render_ont_add,
    render_ont_delete,
    render_ont_state,
    render_service_port,
)
from fiberflow.devices.olt.models import OntInfo, OpticalInfo, ServicePort

log = logging.getLogger(__name__)
# Tries at a free ONT id when sessions of concurrent orders race for the same port.
PICK_ATTEMPTS = 5

MAX_ONT_ID = 127
ONT_MISSING = "The required ONT does not exist"
NO_ONT_ON_PORT = "There is no ONT available"
NO_SERVICE_PORT = "No service virtual port can be operated"
SERVICE_PORT_MISSING = "The service virtual port does not exist"
# optical-info's words for an ONT it has no reading of (not registered, or dark).
OPTICAL_NO_READING = ("The ONT does not exist", "The ONT is not online")


def _back_to_privileged(s: CliSession) -> None:
    """After a failed operation in a held session: leave whatever configuration mode it
    stopped in. ``return`` goes from any depth (config, ``interface gpon F/S``) straight
    to the privileged prompt, where ``quit`` would climb one level at a time and, at
    the privileged prompt, ask to log out."""
    if s.conn.check_config_mode():
        s.call("return", s.conn.exit_config_mode)


class HuaweiOlt:
    def __init__(self, olt: Olt, audit: AuditSink = no_audit) -> None:
        self.olt = olt
        self.audit = audit
        self._holder = SessionHolder(olt, self._fresh_session, _back_to_privileged)

    def held(self) -> AbstractContextManager[None]:
        """One session for every operation in this scope (one login, one slot)."""
        return self._holder.held()

    # --- validation ---------------------------------------------------------------------

    def _port(self, fsp: object) -> tuple[int, int, int]:
        f, s, p = v.fsp(fsp)
        if not self.olt.has_port(f"{f}/{s}/{p}"):
            raise InvalidInput("pon_port", fsp, f"not a GPON port of {self.olt.name}")
        return f, s, p

    def _session(self) -> AbstractContextManager[CliSession]:
        """The held session inside ``held()``, else a new one for this operation."""
        return self._holder.session()

    @contextmanager
    def _fresh_session(self) -> Iterator[CliSession]:
        with open_session(self.olt, "huawei_olt", self.audit, failure_line) as s:
            s.call("enable", s.conn.enable)
            yield s

    def _checked(
        self, s: CliSession, command: str, tolerate: str | None = None, config: bool = False
    ) -> str:
        """Send ``command``; raise the typed error for a failure line (unless tolerated)."""
        out = s.send(command, config=config)
        line = failure_line(out)
        if line is not None and not (tolerate and tolerate in line):
            raise_for_failure(self.olt.name, command, out)
        return out

    # --- reads --------------------------------------------------------------------------

    def get_ont(self, fsp: str, ont_id: int) -> OntInfo | None:
        f, s_, p = self._port(fsp)
        i = v.ont_id(ont_id)
        with self._session() as s:
            return self._get_ont(s, f, s_, p, i)

    def _get_ont(self, s: CliSession, f: int, slot: int, p: int, i: int) -> OntInfo | None:
        out = self._checked(s, f"display ont info {f} {slot} {p} {i}", tolerate=ONT_MISSING)
        return None if failure_line(out) else parsing.parse_ont_detail(out)

    def get_optical_info(self, fsp: str, ont_id: int) -> OpticalInfo | None:
        """The ONT's optical readings; None when it has none (missing, or not online)."""
        f, slot, p = self._port(fsp)
        i = v.ont_id(ont_id)
        cmd = f"display ont optical-info {p} {i}"
        with self._session() as s:
            out = self._in_interface(s, f, slot, cmd)
        line = failure_line(out)
        if line is not None and any(words in line for words in OPTICAL_NO_READING):
            return None
        raise_for_failure(self.olt.name, cmd, out)
        return parsing.parse_optical_info(out)

    def find_ont_by_serial(self, serial: str) -> OntInfo | None:
        sn = v.serial(serial)
        with self._session() as s:
            return self._by_serial(s, sn)

    def _by_serial(self, s: CliSession, sn: str) -> OntInfo | None:
        out = self._checked(s, f"display ont info by-sn {sn}", tolerate=ONT_MISSING)
        return None if failure_line(out) else parsing.parse_ont_detail(out)

    def list_service_ports(self, fsp: str, ont_id: int) -> list[ServicePort]:
        """Service-ports of one ONT; [] when it has none or does not exist."""
        f, slot, p = self._port(fsp)
        i = v.ont_id(ont_id)
        with self._session() as s:
            return self._service_ports(s, f, slot, p, i)

    def _service_ports(self, s: CliSession, f: int, slot: int, p: int, i: int) -> list[ServicePort]:
        cmd = f"display service-port port {f}/{slot}/{p} ont {i}"
        out = s.send(cmd)
        line = failure_line(out)
        if line and (NO_SERVICE_PORT in line or ONT_MISSING in line):
            return []
        raise_for_failure(self.olt.name, cmd, out)
        return parsing.parse_service_ports(out)

    def read_fleet(self) -> OltFleet:
        """Every ONT and service-port of the OLT in one session: ``display ont info F
        all`` per frame of the inventory's boards, then ``display service-port all``."""
        frames = sorted({int(board.split("/")[0]) for board in self.olt.boards})
        onts: list[OntInfo] = []
        with self._session() as s:
            for frame in frames:
                out = self._checked(s, f"display ont info {frame} all", tolerate=NO_ONT_ON_PORT)
                if not failure_line(out):
                    onts += parsing.parse_ont_summary(out)
            cmd = "display service-port all"
            out = s.send(cmd)
            line = failure_line(out)
            if line and NO_SERVICE_PORT in line:
                ports = []
            else:
                raise_for_failure(self.olt.name, cmd, out)
                ports = parsing.parse_service_ports(out)
        return OltFleet(self.olt.name, tuple(onts), tuple(ports))

    def read_autofind(self) -> list[AutofindOnt]:
        """``display ont autofind all``: every unregistered ONT on every PON port, one
        command in one session (zero-touch activation reads it once per pass)."""
        with self._session() as s:
            out = self._checked(s, "display ont autofind all", tolerate=NO_AUTOFIND)
        return parse_autofind(out)

    def find_free_ont_id(self, fsp: str) -> int:
        f, slot, p = self._port(fsp)
        with self._session() as s:
            return self._free_id(s, f, slot, p)

    def _free_id(self, s: CliSession, f: int, slot: int, p: int) -> int:
        out = self._checked(s, f"display ont info {f} {slot} {p} all", tolerate=NO_ONT_ON_PORT)
        used = set() if failure_line(out) else {o.ont_id for o in parsing.parse_ont_summary(out)}
        for candidate in range(MAX_ONT_ID + 1):
            if candidate not in used:
                return candidate
        raise OltCommandFailed(self.olt.name, f"no free ONT id on {f}/{slot}/{p}")

    # --- ONTs ---------------------------------------------------------------------------

    def add_ont(
        self,
        fsp: str,
        ont_id: int | None,
        serial: str,
        line_profile_id: int,
        service_profile_id: int,
        description: str,
        *,
        dry_run: bool = False,
    ) -> Result:
        """Register ``serial`` on ``fsp`` (``ont_id`` None: lowest free id)."""
        f, slot, p = self._port(fsp)
        i = None if ont_id is None else v.ont_id(ont_id)
        sn = v.serial(serial)
        line = v.profile_id("line_profile_id", line_profile_id)
        srv = v.profile_id("service_profile_id", service_profile_id)
        desc = v.description(description)
        port = f"{f}/{slot}/{p}"
        with self._session() as s:
            existing = self._by_serial(s, sn)
            if existing is not None:
                if existing.fsp == port and i in (None, existing.ont_id):
                    return Result(changed=False, detail={"fsp": port, "ont_id": existing.ont_id})
                raise OntSerialExists(
                    self.olt.name, f"{sn} is already ONT {existing.ont_id} on {existing.fsp}"
                )
            pick = i is None
            if i is not None:
                other = self._get_ont(s, f, slot, p, i)
                if other is not None:
                    raise OntIdInUse(self.olt.name, f"ONT {port} {i} holds {other.serial}")
            for attempt in range(1, PICK_ATTEMPTS + 1):
                if pick:
                    i = self._free_id(s, f, slot, p)
                assert i is not None
                lines = render_ont_add(f, slot, p, i, sn, line, srv, desc)
                cmd = lines[1]
                if dry_run:
                    detail: dict[str, object] = {"fsp": port, "ont_id": i}
                    return Result(changed=True, diff=f"+ {cmd}", detail=detail, lines=lines)
                out = self._send_in_interface(s, lines)
                try:
                    raise_for_failure(self.olt.name, cmd, out)
                except OntIdInUse:
                    # Another session (another order on this port) took the id between
                    # our read and our add: read again and take the next free one.
                    if not pick or attempt == PICK_ATTEMPTS:
                        raise
                    continue
                break
            success, _ = parsing.parse_ont_add(out)
            if success != 1:
                raise OltCommandFailed(self.olt.name, f"{cmd!r}: success {success}")
        log.info("ont added", extra={"device": self.olt.name, "fsp": port, "ont_id": i})
        return Result(changed=True, diff=f"+ {cmd}", detail={"fsp": port, "ont_id": i}, lines=lines)

    def activate_ont(self, fsp: str, ont_id: int, *, dry_run: bool = False) -> Result:
        return self._set_active(fsp, ont_id, True, dry_run)

    def deactivate_ont(self, fsp: str, ont_id: int, *, dry_run: bool = False) -> Result:
        return self._set_active(fsp, ont_id, False, dry_run)

    def _set_active(self, fsp: str, ont_id: int, active: bool, dry_run: bool) -> Result:
        f, slot, p = self._port(fsp)
        i = v.ont_id(ont_id)
        with self._session() as s:
            ont = self._get_ont(s, f, slot, p, i)
            if ont is None:
                raise OntNotFound(self.olt.name, f"no ONT {f}/{slot}/{p} {i}")
            if (ont.control_flag == "active") == active:
                return Result(changed=False)
            lines = render_ont_state(f, slot, p, i, active)
            cmd = lines[1]
            if not dry_run:
                out = self._send_in_interface(s, lines)
                raise_for_failure(self.olt.name, cmd, out)
        return Result(changed=True, diff=f"+ {cmd}", lines=lines)

    def delete_ont(self, fsp: str, ont_id: int, *, dry_run: bool = False) -> Result:
        """Remove the ONT's service-ports (``undo service-port``), then the ONT itself."""
        f, slot, p = self._port(fsp)
        i = v.ont_id(ont_id)
        with self._session() as s:
            if self._get_ont(s, f, slot, p, i) is None:
                return Result(changed=False)
            ports = self._service_ports(s, f, slot, p, i)
            lines = render_ont_delete(f, slot, p, i, [sp.index for sp in ports])
            undo, ont = lines[: len(ports)], lines[len(ports) :]
            if not dry_run:
                if undo:
                    self._send_config(s, undo, tolerate=SERVICE_PORT_MISSING)
                out = self._send_in_interface(s, ont)
                raise_for_failure(self.olt.name, ont[1], out)
                if parsing.parse_ont_delete(out) != 1:
                    raise OltCommandFailed(self.olt.name, f"{ont[1]!r}: not deleted")
        done = [*undo, ont[1]]
        return Result(changed=True, diff="\n".join(f"- {c}" for c in done), lines=lines)

    def _in_interface(self, s: CliSession, f: int, slot: int, command: str) -> str:
        """Run the read ``command`` inside ``interface gpon F/S`` and leave config mode."""
        s.call("config", s.conn.config_mode)
        self._checked(s, f"interface gpon {f}/{slot}")
        out = s.send(command)
        s.send("quit")
        s.call("return", s.conn.exit_config_mode)
        return out

    # --- sending: exactly the rendered lines, audited as configuration lines -------------
    def _send_in_interface(self, s: CliSession, lines: Sequence[str]) -> str:
        """``in_interface`` lines in config mode; the output of the command inside."""
        head, command, tail = lines
        s.call("config", s.conn.config_mode)
        self._checked(s, head, config=True)
        out = s.send(command, config=True)
        s.send(tail, config=True)
        s.call("return", s.conn.exit_config_mode)
        return out

    def _send_config(
        self, s: CliSession, lines: Sequence[str], tolerate: str | None = None
    ) -> list[str]:
        s.call("config", s.conn.config_mode)
        outs = [self._checked(s, line, tolerate=tolerate, config=True) for line in lines]
        s.call("return", s.conn.exit_config_mode)
        return outs

    # --- rendering alone (no session): for a plan whose earlier step frees the ONT id ------
    def render_add_ont(self, fsp: str, ont_id: int, serial: str, line_profile_id: int,
                       service_profile_id: int, description: str) -> tuple[str, ...]:  # fmt: skip
        """What ``add_ont`` sends for an ONT id and serial the OLT does not hold."""
        f, slot, p = self._port(fsp)
        return render_ont_add(f, slot, p, v.ont_id(ont_id), v.serial(serial),
                              v.profile_id("line_profile_id", line_profile_id),
                              v.profile_id("service_profile_id", service_profile_id),
                              v.description(description))  # fmt: skip

    def render_add_service_port(self, fsp: str, ont_id: int, gem_port: int, vlan: int,
                                index: int | None = None) -> tuple[str, ...]:  # fmt: skip
        """What ``add_service_port`` sends for an ONT that has no service-port yet."""
        f, slot, p = self._port(fsp)
        idx = None if index is None else v.service_port_index(index)
        return (render_service_port(f, slot, p, v.ont_id(ont_id), v.gem_port(gem_port),
                                    v.vlan(vlan), idx),)  # fmt: skip

    def render_set_active(self, fsp: str, ont_id: int, active: bool) -> tuple[str, ...]:
        """What ``activate_ont``/``deactivate_ont`` sends for an ONT in the other state."""
        f, slot, p = self._port(fsp)
        return render_ont_state(f, slot, p, v.ont_id(ont_id), active)

    # --- service-ports ------------------------------------------------------------------

    def add_service_port(
        self,
        fsp: str,
        ont_id: int,
        gem_port: int,
        vlan: int,
        index: int | None = None,
        *,
        dry_run: bool = False,
    ) -> Result:
        """A service-port VLAN ``vlan`` <-> GEM port of the ONT; detail["index"] is its index."""
        f, slot, p = self._port(fsp)
        i = v.ont_id(ont_id)
        gem = v.gem_port(gem_port)
        vl = v.vlan(vlan)
        idx = None if index is None else v.service_port_index(index)
        with self._session() as s:
            for sp in self._service_ports(s, f, slot, p, i):
                if (sp.vlan, sp.gem_port) == (vl, gem) and idx in (None, sp.index):
                    return Result(changed=False, detail={"index": sp.index})
            cmd = render_service_port(f, slot, p, i, gem, vl, idx)
            if dry_run:  # the index the OLT would pick is its own: None here
                return Result(changed=True, diff=f"+ {cmd}", detail={"index": idx}, lines=(cmd,))
            self._send_config(s, [cmd])
            if idx is None:  # the OLT picked the index: read it back
                found = [
                    sp.index
                    for sp in self._service_ports(s, f, slot, p, i)
                    if (sp.vlan, sp.gem_port) == (vl, gem)
                ]
                if not found:
                    raise OltCommandFailed(self.olt.name, f"{cmd!r}: service-port not found")
                idx = found[0]
        return Result(changed=True, diff=f"+ {cmd}", detail={"index": idx}, lines=(cmd,))

    def remove_service_port(self, index: int, *, dry_run: bool = False) -> Result:
        """Remove service-port ``index``; there is no read by index, so a dry run names
        the line whether or not the OLT still holds it."""
        idx = v.service_port_index(index)
        cmd = f"undo service-port {idx}"
        if dry_run:
            return Result(changed=True, diff=f"- service-port {idx}", lines=(cmd,))
        with self._session() as s:
            (out,) = self._send_config(s, [cmd], tolerate=SERVICE_PORT_MISSING)
        if failure_line(out):
            return Result(changed=False)
        return Result(changed=True, diff=f"- service-port {idx}", lines=(cmd,))
