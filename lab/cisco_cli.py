"""One SSH session's Cisco IOS-XE CLI: exec/enable/config modes and sub-interface config.

Keywords may be shortened as on the device (`sh run | i desc`, `conf t`, `int gi0/0/1.5`,
`shut`); what the CLI does not know gets the parser error with its caret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from fiberflow.lab import bng_render as render
from fiberflow.lab import ios_filter
from fiberflow.lab.bng_state import BngState, SubIf
from fiberflow.lab.cli_base import Reply
from fiberflow.lab.ios_pager import DEFAULT_LENGTH, Pager
from fiberflow.lab.ios_words import Invalid, Keyword, offset, words_are

USER, ENABLE, CONFIG, SUBIF, IFACE = "user", "enable", "config", "subif", "if"
INCOMPLETE = "% Incomplete command."
INVALID = "% Invalid input detected at '^' marker."
NEED_ENCAP = (
    "% Configuring IP routing on a LAN subinterface is only allowed if that\n"
    "subinterface is already configured as part of an IEEE 802.10, IEEE 802.1Q,\n"
    "or ISL vLAN."
)

SHOW, TERMINAL, CONFIGURE, WRITE = ("show", 2), ("terminal", 4), ("configure", 4), ("write", 2)
INTERFACE, DESCRIPTION, SHUTDOWN = ("interface", 3), ("description", 4), ("shutdown", 4)
ENCAPSULATION, SERVICE_POLICY = ("encapsulation", 5), ("service-policy", 4)


class CiscoCli:
    def __init__(self, state: BngState, enable_secret: str = "") -> None:
        self.state = state
        self.enable_secret = enable_secret
        self.mode = USER
        self.current = ""
        self.awaiting_secret = False
        self.length = DEFAULT_LENGTH  # `terminal length`; 0 turns the pager off

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

    # --- lines --------------------------------------------------------------------------

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
        out = self._dispatch(cmd, line)
        if out is None or isinstance(out, Invalid):
            at = out.at if out else 0
            # The caret sits under the offending word of the echoed line.
            return Reply(" " * (len(self.prompt()) + at) + "^\n" + INVALID)
        if isinstance(out, list):
            if Pager.needed(out, self.length):
                return Pager(out, self.length).first()
            return Reply("\n".join(out))
        return out if isinstance(out, Reply) else Reply(out)

    def _dispatch(self, cmd: str, raw: str) -> str | list[str] | Reply | Invalid | None:
        words = cmd.split(" ")
        if words[0] == "do" and self.mode in (CONFIG, SUBIF, IFACE):
            out = self._exec(cmd[3:], raw.split("do", 1)[1])
            return Invalid(out.at + 3) if isinstance(out, Invalid) else out
        if self.mode in (USER, ENABLE):
            return self._exec(cmd, raw)
        if cmd == "end":
            self.mode = ENABLE
            return ""
        if cmd == "exit":
            self.mode = CONFIG if self.mode in (SUBIF, IFACE) else ENABLE
            return ""
        remove = words[0] == "no"
        if words_are(words[remove:], INTERFACE):
            if len(words) == 1 + remove:
                return INCOMPLETE
            return self._interface("".join(words[1 + remove :]), remove)
        if self.mode == SUBIF:
            return self._subif(words, raw)
        if self.mode == IFACE:
            return self._uplink(words, raw)
        return None

    # --- exec mode ----------------------------------------------------------------------

    def _exec(self, cmd: str, raw: str) -> str | list[str] | Reply | Invalid | None:
        words = cmd.split(" ")
        if words_are(words, TERMINAL, ("length", 3)) or words_are(words, TERMINAL, ("width", 3)):
            if len(words) != 3 or not words[2].isdigit() or int(words[2]) > 512:
                return Invalid(offset(words, 2))
            if words[1].lower().startswith("l"):
                self.length = int(words[2])
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
        if words_are(words, SHOW):
            return self._show(cmd, raw)
        if self.mode == USER:
            return None
        if words_are(words, CONFIGURE, ("terminal", 1)) and len(words) == 2:
            self.mode = CONFIG
            return "Enter configuration commands, one per line.  End with CNTL/Z."
        if words_are(words, WRITE) and (len(words) == 1 or words_are(words[1:], ("memory", 1))):
            return "Building configuration...\n[OK]"
        return None

    def _show(self, cmd: str, raw: str) -> list[str] | str | Invalid:
        head = cmd.partition("|")[0].strip()
        words = head.split(" ")
        out = self._show_lines(words)
        if not isinstance(out, list) or "|" not in cmd:
            return out
        spec = raw.partition("|")[2]
        flt = ios_filter.parse(spec, len(head) + 2)
        if isinstance(flt, ios_filter.FilterError):
            return INCOMPLETE if flt.message == "incomplete" else Invalid(flt.at)
        return flt.apply(out)

    def _show_lines(self, words: list[str]) -> list[str] | str | Invalid:
        st, rest = self.state, words[1:]
        if not rest:
            return '% Type "show ?" for a list of subcommands'
        shows: list[tuple[list[Keyword], Callable[[], list[str]]]] = [
            ([("version", 3)], lambda: render.show_version(st)),
            ([("ip", 2), ("interface", 3), ("brief", 2)], lambda: render.ip_interface_brief(st)),
            ([("interfaces", 3), ("description", 3)], lambda: render.interfaces_description(st)),
        ]
        if self.mode != USER:  # the running configuration is privileged
            shows.append(([("running-config", 2)], lambda: render.running_config(st)))
        for keywords, show in shows:
            if words_are(rest, *keywords) and len(rest) == len(keywords):
                return show()
        if self.mode != USER and words_are(rest, ("running-config", 2), INTERFACE):
            if len(rest) == 2:
                return INCOMPLETE
            lines = render.running_interface(st, self._full_name("".join(rest[2:])))
            return Invalid(offset(words, 3)) if lines is None else lines
        # Caret under the first word no show command starts with.
        known = 1
        for keywords, _ in shows:
            depth = 1
            while depth <= min(len(rest), len(keywords)) and words_are(
                rest[:depth], *keywords[:depth]
            ):
                depth += 1
            known = max(known, depth)
        return Invalid(offset(words, known))

    # --- configuration --------------------------------------------------------------------

    def _full_name(self, typed: str) -> str:
        """IOS completes an interface type typed short or in any case: gi0/0/1.5."""
        m = re.fullmatch(r"([A-Za-z-]+)([\d/.:]+)", typed)
        kind = re.match(r"[A-Za-z-]+", self.state.uplink)
        if m and kind and len(m[1]) >= 2 and kind[0].lower().startswith(m[1].lower()):
            return kind[0] + m[2]
        return typed

    def _interface(self, typed: str, remove: bool) -> str | None:
        st, name = self.state, self._full_name(typed)
        if name == st.uplink:
            if remove:
                return "% Physical interfaces cannot be removed"
            self.mode = IFACE
            return ""
        if not st.is_subif(name):
            return None
        if remove:
            # IOS accepts `no interface` for one that does not exist, silently.
            st.remove(name)
            self.mode = CONFIG
            return ""
        with st.lock:
            if name not in st.subifs:
                st.ensure(name)
                st.touch()
        self.current, self.mode = name, SUBIF
        return ""

    def _uplink(self, words: list[str], raw: str) -> str | None:
        st = self.state
        remove = words[0] == "no"
        if words_are(words[remove:], DESCRIPTION):
            if not remove and len(words) == 1:
                return INCOMPLETE
            st.uplink_description = None if remove else _rest_of(raw)
        elif words_are(words[remove:], SHUTDOWN) and len(words) == 1 + remove:
            st.uplink_shutdown = not remove
        elif " ".join(words) in ("negotiation auto", "no ip address"):
            return ""
        else:
            return None
        st.touch()
        return ""

    def _subif(self, words: list[str], raw: str) -> str | None:
        st = self.state
        with st.lock:
            sub = st.subifs.get(self.current)
            if sub is None:  # removed behind our back (admin) while in its context
                sub = st.ensure(self.current)
            out = self._subif_line(sub, words, raw)
            if out == "":
                st.touch()
            return out

    def _subif_line(self, sub: SubIf, words: list[str], raw: str) -> str | None:
        remove = words[0] == "no"
        args = words[1 + remove :]
        if words_are(words[remove:], DESCRIPTION):
            if not remove and not args:
                return INCOMPLETE
            sub.description = None if remove else _rest_of(raw)
        elif words_are(words, ENCAPSULATION) and len(words) < 3:
            return INCOMPLETE
        elif words_are(words, ENCAPSULATION, ("dot1q", 4)):
            m = re.fullmatch(r"(\d{1,4})(?: (\S+) (\d{1,4}))?", " ".join(words[2:]))
            if not m or (m[2] and not words_are([m[2]], ("second-dot1q", 3))):
                return None
            outer, inner = int(m[1]), int(m[3]) if m[3] else None
            if not 0 < outer < 4095 or (inner is not None and not 0 < inner < 4095):
                return None
            owner = self.state.set_encapsulation(sub.name, outer, inner)
            if owner:
                return (
                    "Configuration of multiple subinterfaces of the same main interface "
                    f"with the same VID ({outer}) is not permitted.\n"
                    f"This VID is already configured on {owner}."
                )
        elif words_are(words[remove:], ("ip", 2), ("address", 3)):
            if remove:
                sub.ip_address = sub.netmask = None
                return ""
            if len(args) != 3:
                return INCOMPLETE if len(args) < 3 else None
            if sub.outer_vlan is None:
                return NEED_ENCAP
            try:
                ipaddress.IPv4Network(f"{args[1]}/{args[2]}", strict=False)
            except ValueError:
                return None
            sub.ip_address, sub.netmask = args[1], args[2]
        elif words_are(words[remove:], SERVICE_POLICY):
            return _service_policy(sub, args, remove)
        elif words_are(words[remove:], SHUTDOWN) and not args:
            sub.shutdown = not remove
        else:
            return None
        return ""


def _service_policy(sub: SubIf, args: list[str], remove: bool) -> str | None:
    if not args or not words_are(args, ("input", 1)) and not words_are(args, ("output", 1)):
        return INCOMPLETE if not args else None
    if len(args) != 2:
        return INCOMPLETE if len(args) < 2 else None
    attr = "policy_in" if args[0].lower().startswith("i") else "policy_out"
    if remove:
        if getattr(sub, attr) != args[1]:
            return f"Policy map {args[1]} not attached"
        setattr(sub, attr, None)
    else:
        setattr(sub, attr, args[1])
    return ""


def _rest_of(raw: str) -> str:
    """The text after the keyword, kept as typed (descriptions keep their spacing)."""
    return raw.strip().split(None, 1)[1] if len(raw.split()) > 1 else ""
