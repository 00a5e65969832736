"""One SSH session's Cisco IOS-XE CLI: exec/enable/config modes and sub-interface config."""

from __future__ import annotations

import ipaddress
import re

from fiberflow.lab.bng_state import BngState, SubIf
from fiberflow.lab.cli_base import Reply

USER, ENABLE, CONFIG, SUBIF, IFACE = "user", "enable", "config", "subif", "if"
INCOMPLETE = "% Incomplete command."
NEED_ENCAP = (
    "% Configuring IP routing on a LAN subinterface is only allowed if that\n"
    "subinterface is already configured as part of an IEEE 802.10, IEEE 802.1Q,\n"
    "or ISL vLAN."
)


def render_subif(sub: SubIf) -> list[str]:
    """Running-config lines in IOS order (see the show_running-config_interface capture)."""
    lines = [f"interface {sub.name}"]
    if sub.description:
        lines.append(f" description {sub.description}")
    if sub.outer_vlan is not None:
        inner = f" second-dot1q {sub.inner_vlan}" if sub.inner_vlan is not None else ""
        lines.append(f" encapsulation dot1Q {sub.outer_vlan}{inner}")
    if sub.ip_address:
        lines.append(f" ip address {sub.ip_address} {sub.netmask}")
    else:
        lines.append(" no ip address")
    if sub.shutdown:
        lines.append(" shutdown")
    if sub.policy_in:
        lines.append(f" service-policy input {sub.policy_in}")
    if sub.policy_out:
        lines.append(f" service-policy output {sub.policy_out}")
    return lines


class CiscoCli:
    def __init__(self, state: BngState, enable_secret: str = "") -> None:
        self.state = state
        self.enable_secret = enable_secret
        self.mode = USER
        self.current = ""
        self.awaiting_secret = False

    def banner(self) -> str:
        return "\n"

    def prompt(self) -> str:
        n = self.state.name
        return {
            USER: f"{n}>",
            ENABLE: f"{n}#",
            CONFIG: f"{n}(config)#",
            SUBIF: f"{n}(config-subif)#",
            IFACE: f"{n}(config-if)#",
        }[self.mode]

    def handle(self, line: str) -> Reply:
        if self.awaiting_secret:
            self.awaiting_secret = False
            if line.strip() == self.enable_secret:
                self.mode = ENABLE
                return Reply()
            return Reply("% Access denied")
        cmd = " ".join(line.split())
        if not cmd:
            return Reply()
        out = self._dispatch(cmd)
        if out is None:
            caret = " " * len(self.prompt()) + "^"
            return Reply(f"{caret}\n% Invalid input detected at '^' marker.")
        return out if isinstance(out, Reply) else Reply(out)

    def _dispatch(self, cmd: str) -> str | Reply | None:
        if cmd.startswith("do ") and self.mode in (CONFIG, SUBIF, IFACE):
            return self._exec(cmd[3:])
        if self.mode in (USER, ENABLE):
            return self._exec(cmd)
        if cmd == "end":
            self.mode = ENABLE
            return ""
        if cmd == "exit":
            self.mode = CONFIG if self.mode in (SUBIF, IFACE) else ENABLE
            return ""
        if m := re.fullmatch(r"(no )?interface (\S+)", cmd):
            return self._interface(m[2], remove=bool(m[1]))
        if self.mode == SUBIF:
            return self._subif(cmd)
        if self.mode == IFACE:
            return "" if cmd in ("no shutdown", "negotiation auto", "no ip address") else None
        return None

    def _exec(self, cmd: str) -> str | Reply | None:
        if re.fullmatch(r"terminal (length|width) \d+", cmd):
            return ""
        if cmd == "enable":
            if self.mode == USER:
                self.awaiting_secret = True
                return Reply("Password: ", prompt=False)
            return ""
        if cmd == "disable":
            self.mode = USER
            return ""
        if cmd in ("exit", "logout", "quit"):
            return Reply("", prompt=False, close=True)
        if self.mode == USER:
            return None
        if cmd in ("configure terminal", "conf t"):
            self.mode = CONFIG
            return "Enter configuration commands, one per line.  End with CNTL/Z."
        if m := re.fullmatch(r"show running-config interface (\S+)", cmd):
            return self._show_run(m[1])
        return None

    def _show_run(self, name: str) -> str | None:
        if name == self.state.uplink:
            body = [f"interface {name}", " no ip address", " negotiation auto"]
        else:
            sub = self.state.get(name)
            if sub is None:
                return None
            body = render_subif(sub)
        text = "\n".join(["!", *body, "end"])
        return f"Building configuration...\n\nCurrent configuration : {len(text)} bytes\n{text}"

    def _interface(self, name: str, remove: bool) -> str | None:
        if name == self.state.uplink:
            if remove:
                return "% Physical interfaces cannot be removed"
            self.mode = IFACE
            return ""
        if not re.fullmatch(re.escape(self.state.uplink) + r"\.\d{1,9}", name):
            return None
        if remove:
            self.state.remove(name)
            self.mode = CONFIG
            return ""
        self.state.ensure(name)
        self.current, self.mode = name, SUBIF
        return ""

    def _subif(self, cmd: str) -> str | None:
        st = self.state
        with st.lock:
            sub = st.subifs.get(self.current)
            if sub is None:  # removed behind our back (admin) while in its context
                sub = st.ensure(self.current)
            if m := re.fullmatch(r"description (.+)", cmd):
                sub.description = m[1]
            elif cmd == "no description":
                sub.description = None
            elif m := re.fullmatch(r"encapsulation dot1Q (\d+)(?: second-dot1q (\d+))?", cmd):
                outer, inner = int(m[1]), int(m[2]) if m[2] else None
                owner = st.vlan_owner(outer, inner, other_than=sub.name)
                if owner:
                    return (
                        "Configuration of multiple subinterfaces of the same main interface "
                        f"with the same VID ({outer}) is not permitted.\n"
                        f"This VID is already configured on {owner}."
                    )
                sub.outer_vlan, sub.inner_vlan = outer, inner
            elif cmd in ("encapsulation dot1Q", "ip address", "service-policy input"):
                return INCOMPLETE
            elif m := re.fullmatch(r"ip address (\S+) (\S+)", cmd):
                if sub.outer_vlan is None:
                    return NEED_ENCAP
                try:
                    ipaddress.IPv4Network(f"{m[1]}/{m[2]}", strict=False)
                except ValueError:
                    return None
                sub.ip_address, sub.netmask = m[1], m[2]
            elif cmd == "no ip address":
                sub.ip_address = sub.netmask = None
            elif m := re.fullmatch(r"(no )?service-policy (input|output) (\S+)", cmd):
                attr = "policy_in" if m[2] == "input" else "policy_out"
                if m[1]:
                    if getattr(sub, attr) != m[3]:
                        return f"Policy map {m[3]} not attached"
                    setattr(sub, attr, None)
                else:
                    setattr(sub, attr, m[3])
            elif cmd in ("shutdown", "no shutdown"):
                sub.shutdown = cmd == "shutdown"
            else:
                return None
        return ""
