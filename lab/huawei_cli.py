"""One SSH session's Huawei SmartAX CLI: modes, prompts and the commands the driver uses."""

from __future__ import annotations

import re

from fiberflow.lab.cli_base import Reply
from fiberflow.lab.huawei_display import display
from fiberflow.lab.olt_state import MAX_ONT_ID, PARAM_ERROR, OltState
from fiberflow.lab.olt_state import ServicePort as SpRow
from fiberflow.lab.pager import MAX_LINES, MIN_LINES, Pager

USER, ENABLE, CONFIG, IFACE = "user", "enable", "config", "iface"
LOGOUT_QUESTION = "  Are you sure to log out? (y/n)[n]:"
LOGOUT_TEXT = (
    "\n  Check whether system data has been changed. Please save data before logout.\n"
    "Configuration console exit, please retry to log on\n"
)
UNKNOWN = "  % Unknown command, the error locates at '^'"

ONT_ADD = re.compile(
    # The serial may be quoted, as the running configuration prints it.
    r'ont add (\d+) (\d+) sn-auth "?([^"\s]+)"? omci ont-lineprofile-id (\d+) '
    r'ont-srvprofile-id (\d+) desc "([^"]*)"'
)
SERVICE_PORT = re.compile(
    r"service-port (?:(\d+) )?vlan (\d+) gpon (\d+)/(\d+)/(\d+) ont (\d+) gemport (\d+) "
    r"multi-service user-vlan (\d+)(?: tag-transform translate)?"
)


def _caret(prompt_len: int) -> str:
    return " " * prompt_len + "^\n" + UNKNOWN


class HuaweiCli:
    def __init__(self, state: OltState) -> None:
        self.state = state
        self.mode = USER
        self.slot: tuple[int, int] = (0, 0)
        self.logout_pending = False
        self.pager = Pager()

    def banner(self) -> str:
        return "\n  User last login information:\n  Access Type: SSH\n  -----------\n\n"

    def prompt(self) -> str:
        name = self.state.name
        return {
            USER: f"{name}>",
            ENABLE: f"{name}#",
            CONFIG: f"{name}(config)#",
            IFACE: f"{name}(config-if-gpon-{self.slot[0]}/{self.slot[1]})#",
        }[self.mode]

    def handle(self, line: str) -> Reply:
        cmd = " ".join(line.split())
        if self.logout_pending:
            self.logout_pending = False
            if cmd.lower().startswith("y"):
                return Reply(LOGOUT_TEXT, prompt=False, close=True)
            return Reply()
        if not cmd:
            return Reply()
        out = self._dispatch(cmd)
        if out is None:
            return Reply(_caret(len(self.prompt())))
        if isinstance(out, Reply):
            return out
        return self.pager.page(out)

    def _dispatch(self, cmd: str) -> str | Reply | None:  # noqa: C901 - a command table
        # Session set-up commands netmiko's huawei_olt sends; accepted in every mode.
        if cmd in ("undo smart", "smart", "infoswitch cli OFF", "undo interactive"):
            return ""
        if re.fullmatch(r"mmi-mode (enable|disable)", cmd):
            return ""
        if (paging := self._paging(cmd)) is not None:
            return paging
        if cmd == "enable":
            self.mode = ENABLE if self.mode == USER else self.mode
            return ""
        if cmd in ("config", "configure terminal"):
            if self.mode == USER:
                return None
            self.mode = CONFIG if self.mode == ENABLE else self.mode
            return ""
        if cmd == "return":
            self.mode = ENABLE if self.mode != USER else USER
            return ""
        if cmd == "disable" and self.mode == ENABLE:
            self.mode = USER
            return ""
        if cmd in ("quit", "exit", "logout"):
            if self.mode == IFACE:
                self.mode = CONFIG
                return ""
            if self.mode == CONFIG:
                self.mode = ENABLE
                return ""
            self.logout_pending = True
            return Reply(LOGOUT_QUESTION, prompt=False)
        if cmd.startswith("display "):
            return display(
                self.state, cmd[len("display ") :], self.slot if self.mode == IFACE else None
            )
        if self.mode == CONFIG:
            return self._config(cmd)
        if self.mode == IFACE:
            return self._iface(cmd)
        return None

    def _paging(self, cmd: str) -> str | None:
        """Lines per page for this session; None: not a paging command."""
        # Bare `scroll` shows everything unpaged: it is how netmiko's huawei_olt
        # session preparation turns paging off.
        if cmd == "scroll":
            self.pager.lines = None
            return ""
        if m := re.fullmatch(r"scroll (\d+)", cmd):
            if not MIN_LINES <= int(m[1]) <= MAX_LINES:
                return PARAM_ERROR
            self.pager.lines = int(m[1])
            return ""
        if m := re.fullmatch(r"screen-length (\d+) temporary", cmd):
            self.pager.lines = int(m[1]) or None  # 0: no paging
            return ""
        return None

    # --- config mode ----------------------------------------------------------------------

    def _config(self, cmd: str) -> str | None:
        if m := re.fullmatch(r"interface gpon (\d+)/(\d+)", cmd):
            slot = (int(m[1]), int(m[2]))
            if slot not in self.state.boards:
                return PARAM_ERROR
            self.slot, self.mode = slot, IFACE
            return ""
        if m := SERVICE_PORT.fullmatch(cmd):
            index = int(m[1]) if m[1] is not None else None
            vlan, f, s, p, ont, gem, uv = (int(g) for g in m.groups()[1:])
            sp = SpRow(0, vlan, f, s, p, ont, gem, uv)
            return self.state.add_service_port(index, sp) or ""
        if m := re.fullmatch(r"undo service-port (\d+)", cmd):
            return self.state.remove_service_port(int(m[1])) or ""
        return None

    # --- interface gpon F/S ---------------------------------------------------------------

    def _iface(self, cmd: str) -> str | None:
        st = self.state
        if m := ONT_ADD.fullmatch(cmd):
            p, i, sn, line, srv = (m[1], m[2], m[3], m[4], m[5])
            if int(i) > MAX_ONT_ID:
                return PARAM_ERROR
            key = (*self.slot, int(p), int(i))
            failure = st.add_ont(key, sn, m[6], int(line), int(srv))
            if failure:
                return f"  Number of ONTs that can be added: 1, success: 0\n{failure}"
            return f"  Number of ONTs that can be added: 1, success: 1\n  PortID :{p}, ONTID :{i}"
        if m := re.fullmatch(r"ont delete (\d+) (\d+)", cmd):
            failure = st.delete_ont((*self.slot, int(m[1]), int(m[2])))
            if failure:
                return failure
            return "  Number of ONTs that can be deleted: 1, success: 1"
        if m := re.fullmatch(r"port (\d+) ont-auto-find (enable|disable)", cmd):
            # Every lab port already reports unknown ONTs (autofind is always on).
            return "" if st.has_port(*self.slot, int(m[1])) else PARAM_ERROR
        if m := re.fullmatch(r"ont (activate|deactivate) (\d+) (\d+)", cmd):
            key = (*self.slot, int(m[2]), int(m[3]))
            return st.set_active(key, m[1] == "activate") or ""
        return None
