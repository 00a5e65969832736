"""Cisco IOS-XE BNG driver over netmiko ``cisco_ios``: subscriber sub-interfaces.

A subscriber is sub-interface ``<uplink>.<vlan>`` with ``encapsulation dot1Q <vlan>``
(``second-dot1q <inner>`` for QinQ), a description, ``ip address`` and the plan's input
and output service policies. Suspension swaps both policies for the walled-garden
policy; resumption puts the plan's back. Every operation validates its input first,
opens ONE session (or, inside ``held()``, shares one with the operations around it:
devices/cli_session.py ``SessionHolder``), reads the current config, and changes only
what differs.

A change is rendered first (``interface <name>`` and the lines that turn what the BNG
holds into what is wanted), then exactly those lines are sent in config mode
(``configure terminal``/``end`` are mode changes, not lines); ``dry_run=True`` makes the
same reads and returns the lines unsent (``Result.lines``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from fiberflow.devices import validation as v
from fiberflow.devices.base import AuditSink, InvalidInput, PermanentDeviceError, Result, no_audit
from fiberflow.devices.bng.fleet import BngFleet, parse_subinterfaces
from fiberflow.devices.bng.models import SubInterface
from fiberflow.devices.bng.parsing import INVALID, parse_running_interfaces
from fiberflow.devices.cli_session import CliSession, SessionHolder, open_session
from fiberflow.devices.inventory import Bng

log = logging.getLogger(__name__)

# Lines IOS prints when it refuses a configuration line. "%"-lines cover the classic
# parser errors and e.g. "% Configuring IP routing on a LAN subinterface ..."; the VID
# clash message has no "%" at all.
ERROR_PATTERN = r"% Invalid|% Incomplete|% Ambiguous|%\s*Error|^%|is not permitted|not attached"


class ConfigRejected(PermanentDeviceError):
    """The BNG refused a configuration line."""


class SubscriberNotFound(PermanentDeviceError):
    """No sub-interface for this VLAN."""


def _failure(output: str) -> str | None:
    for line in output.splitlines():
        if line.lstrip().startswith("%") or "is not permitted" in line:
            return line.strip()
    return None


def _back_to_privileged(s: CliSession) -> None:
    """After a failed operation in a held session (a rejected line leaves IOS in
    ``config-subif``): ``end`` goes from any configuration depth to the exec prompt."""
    if s.conn.check_config_mode():
        s.call("end", s.conn.exit_config_mode)


class CiscoBng:
    def __init__(
        self, bng: Bng, walled_garden_policy: str = "WALLED-GARDEN", audit: AuditSink = no_audit
    ) -> None:
        self.bng = bng
        self.walled_garden_policy = v.policy(walled_garden_policy)
        self.audit = audit
        self._holder = SessionHolder(bng, self._fresh_session, _back_to_privileged)

    def held(self) -> AbstractContextManager[None]:
        """One session for every operation in this scope (one login, one slot)."""
        return self._holder.held()

    def _session(self) -> AbstractContextManager[CliSession]:
        """The held session inside ``held()``, else a new one for this operation."""
        return self._holder.session()

    @contextmanager
    def _fresh_session(self) -> Iterator[CliSession]:
        with open_session(self.bng, "cisco_ios", self.audit, _failure) as s:
            s.call("enable", s.conn.enable)
            yield s

    def _name(self, vlan: int) -> str:
        return v.interface(f"{self.bng.uplink}.{v.vlan(vlan)}")

    # --- reads --------------------------------------------------------------------------

    def get_subscriber(self, vlan: int) -> SubInterface | None:
        name = self._name(vlan)
        with self._session() as s:
            return self._read(s, name)

    def read_fleet(self) -> BngFleet:
        """Every subscriber sub-interface, from one ``show running-config``."""
        with self._session() as s:
            out = s.send("show running-config")
        if INVALID.search(out):
            raise PermanentDeviceError(self.bng.name, "show running-config refused")
        subs = parse_subinterfaces(out, self.bng.uplink)
        return BngFleet(self.bng.name, self.bng.uplink, tuple(subs))

    def remove_interface(self, name: str, *, dry_run: bool = False) -> Result:
        """Remove sub-interface ``name`` of the uplink, whatever its VLAN (an orphan may
        carry none, or one that differs from its number)."""
        checked = v.interface(name)
        if not checked.startswith(f"{self.bng.uplink}."):
            raise InvalidInput("interface", name, f"not a sub-interface of {self.bng.uplink}")
        with self._session() as s:
            if self._read(s, checked) is None:
                return Result(changed=False)
            lines = (f"no interface {checked}",)
            if dry_run:
                return Result(changed=True, diff=f"- interface {checked}", lines=lines)
            self._configure(s, lines)
        log.info("sub-interface removed", extra={"device": self.bng.name, "interface": checked})
        return Result(changed=True, diff=f"- interface {checked}", lines=lines)

    def _read(self, s: CliSession, name: str) -> SubInterface | None:
        out = s.send(f"show running-config interface {name}")
        if INVALID.search(out):
            return None  # IOS answers an unknown interface with the parser error
        rows = [r for r in parse_running_interfaces(out) if r.name == name]
        return rows[0] if rows else None

    # --- changes ------------------------------------------------------------------------

    def add_subscriber(
        self,
        vlan: int,
        ip_address: str,
        netmask: str,
        policy_in: str,
        policy_out: str,
        description: str,
        inner_vlan: int | None = None,
        *,
        dry_run: bool = False,
    ) -> Result:
        name = self._name(vlan)
        outer = v.vlan(vlan)
        inner = None if inner_vlan is None else v.vlan(inner_vlan)
        ip = v.ipv4("ip_address", ip_address)
        mask = v.ipv4_mask(netmask)
        p_in, p_out = v.policy(policy_in), v.policy(policy_out)
        desc = v.description(description)
        want = SubInterface(name, outer, inner, desc, ip, mask, p_in, p_out)
        return self._converge(name, want, create=True, dry_run=dry_run)

    def apply_walled_garden(self, vlan: int, *, dry_run: bool = False) -> Result:
        wg = self.walled_garden_policy
        return self._set_policies(vlan, wg, wg, dry_run)

    def restore_plan(
        self, vlan: int, policy_in: str, policy_out: str, *, dry_run: bool = False
    ) -> Result:
        return self._set_policies(vlan, v.policy(policy_in), v.policy(policy_out), dry_run)

    def _set_policies(self, vlan: int, policy_in: str, policy_out: str, dry_run: bool) -> Result:
        name = self._name(vlan)
        return self._converge(name, (policy_in, policy_out), create=False, dry_run=dry_run)

    def remove_subscriber(self, vlan: int, *, dry_run: bool = False) -> Result:
        name = self._name(vlan)
        with self._session() as s:
            if self._read(s, name) is None:
                return Result(changed=False)
            lines = (f"no interface {name}",)
            if dry_run:
                return Result(changed=True, diff=f"- interface {name}", lines=lines)
            self._configure(s, lines)
        log.info("subscriber removed", extra={"device": self.bng.name, "interface": name})
        return Result(changed=True, diff=f"- interface {name}", lines=lines)

    def _converge(
        self, name: str, want: SubInterface | tuple[str, str], create: bool, dry_run: bool
    ) -> Result:
        with self._session() as s:
            have = self._read(s, name)
            if have is None and not create:
                raise SubscriberNotFound(self.bng.name, f"no sub-interface {name}")
            if isinstance(want, tuple):
                assert have is not None
                lines = _policy_lines(have, *want)
            else:
                lines = _subif_lines(have, want)
            if not lines:
                return Result(changed=False)
            sent = (f"interface {name}", *lines)
            if not dry_run:
                self._configure(s, sent)
        return Result(changed=True, diff="\n".join(f"+ {line}" for line in lines), lines=sent)

    def _configure(self, s: CliSession, lines: Sequence[str]) -> None:
        s.call("configure terminal", s.conn.config_mode)
        for line in lines:
            try:
                s.configure(line, ERROR_PATTERN)
            except PermanentDeviceError as exc:
                raise ConfigRejected(self.bng.name, exc.message) from exc
        s.call("end", s.conn.exit_config_mode)


def _subif_lines(have: SubInterface | None, want: SubInterface) -> list[str]:
    """Config lines turning ``have`` into ``want`` (IOS order: encapsulation before IP)."""
    lines: list[str] = []
    if have is None or have.description != want.description:
        lines.append(f"description {want.description}")
    if have is None or (have.vlan, have.inner_vlan) != (want.vlan, want.inner_vlan):
        qinq = f" second-dot1q {want.inner_vlan}" if want.inner_vlan is not None else ""
        lines.append(f"encapsulation dot1Q {want.vlan}{qinq}")
    if have is None or (have.ip_address, have.netmask) != (want.ip_address, want.netmask):
        lines.append(f"ip address {want.ip_address} {want.netmask}")
    base = have or SubInterface(want.name, None, None, None, None, None, None, None)
    assert want.policy_in is not None and want.policy_out is not None
    return lines + _policy_lines(base, want.policy_in, want.policy_out)


def _policy_lines(have: SubInterface, policy_in: str, policy_out: str) -> list[str]:
    lines: list[str] = []
    for direction, old, new in (
        ("input", have.policy_in, policy_in),
        ("output", have.policy_out, policy_out),
    ):
        if old == new:
            continue
        if old is not None:  # IOS takes one policy per direction: detach the old one first
            lines.append(f"no service-policy {direction} {old}")
        lines.append(f"service-policy {direction} {new}")
    return lines
