"""The ``display ...`` commands of the lab Huawei OLT: state in, device text out."""

from __future__ import annotations

import re
import time

from fiberflow.lab import huawei_render as render
from fiberflow.lab import huawei_render_optics as optics_render
from fiberflow.lab.huawei_render_config import current_configuration
from fiberflow.lab.huawei_render_system import board, version
from fiberflow.lab.olt_state import (
    NO_ONT_ON_PORT,
    NO_SP,
    ONT_MISSING,
    PARAM_ERROR,
    PORT_MISSING,
    OltState,
)
from fiberflow.lab.ont_optics import optics

NO_AUTOFIND = "  Failure: The automatically found ONTs do not exist"
ONT_OFFLINE = "  Failure: The ONT is not online"
# optical-info words its missing ONT differently from `display ont info`.
OPTICAL_ONT_MISSING = "  Failure: The ONT does not exist"


def display(st: OltState, rest: str, slot: tuple[int, int] | None) -> str | None:  # noqa: C901 - a command table
    """Output of ``display <rest>``; ``slot`` is the board in gpon interface mode (else
    None). None: not a command here (the CLI prints the unknown-command caret)."""
    if rest == "version":
        return version(time.monotonic() - st.started)
    if m := re.fullmatch(r"board(?: (\d+))?", rest):
        frame = int(m[1] or 0)
        slots = {s for f, s in st.boards if f == frame}
        return board(slots) if slots else PARAM_ERROR
    if rest == "current-configuration":
        return current_configuration(st.name, st.boards, *st.configuration())
    if rest == "ont autofind all" or (slot and re.fullmatch(r"ont autofind \d+", rest)):
        found = st.autofind()
        if slot is not None and rest != "ont autofind all":
            port = (*slot, int(rest.rsplit(" ", 1)[1]))
            found = [p for p in found if p.fsp == port]
        return optics_render.autofind(found) if found else NO_AUTOFIND
    if rest.startswith("ont info "):
        return _ont_info(st, rest[len("ont info ") :], slot)
    if m := re.fullmatch(r"ont optical-info (\d+) (\d+|all)", rest):
        return None if slot is None else _optical(st, (*slot, int(m[1])), m[2])
    if m := re.fullmatch(r"service-port port (\d+)/(\d+)/(\d+) ont (\d+)", rest):
        f, s, p, i = (int(g) for g in m.groups())
        if st.view((f, s, p, i)) is None:
            return ONT_MISSING
        sps = st.ports_of(f, s, p, i)
        return render.service_ports([(sp, st.sp_online(sp)) for sp in sps]) if sps else NO_SP
    if rest == "service-port all":
        rows = st.service_port_rows()
        return render.service_ports(rows) if rows else NO_SP
    return None


def _ont_info(st: OltState, args: str, slot: tuple[int, int] | None) -> str | None:
    if m := re.fullmatch(r"(\d+) (\d+) (\d+) (\d+)", args):
        f, s, p, i = (int(g) for g in m.groups())
        v = st.view((f, s, p, i))
        return ONT_MISSING if v is None else render.ont_detail(v)
    if m := re.fullmatch(r"(\d+) (\d+)", args):
        if slot is None:
            return None
        v = st.view((*slot, int(m[1]), int(m[2])))
        return ONT_MISSING if v is None else render.ont_detail(v)
    if m := re.fullmatch(r"(\d+) (\d+) (\d+) all", args):
        f, s, p = (int(g) for g in m.groups())
        if not st.has_port(f, s, p):
            return PORT_MISSING
        views = st.views_on_port(f, s, p)
        return render.port_summary(f, s, p, views) if views else NO_ONT_ON_PORT
    if m := re.fullmatch(r"(\d+) all", args):
        # Every port of the frame that has ONTs, one port table after another.
        blocks = st.views_in_frame(int(m[1]))
        if not blocks:
            return NO_ONT_ON_PORT
        return "\n\n".join(render.port_summary(*fsp, views) for fsp, views in blocks)
    if m := re.fullmatch(r"by-sn (\S+)", args):
        v = st.find_serial(m[1])
        return ONT_MISSING if v is None else render.ont_detail(v)
    return None


def _optical(st: OltState, fsp: tuple[int, int, int], which: str) -> str:
    if not st.has_port(*fsp):
        return PORT_MISSING
    if which != "all":
        v = st.view((*fsp, int(which)))
        if v is None:
            return OPTICAL_ONT_MISSING
        if not v.online:
            return ONT_OFFLINE
        return optics_render.optical_detail(optics(v.ont.serial, st.rx_power(v.ont.serial)))
    views = st.views_on_port(*fsp)
    if not views:
        return NO_ONT_ON_PORT
    rows = [(v.key[3], optics(v.ont.serial, st.rx_power(v.ont.serial))) for v in views if v.online]
    return optics_render.optical_port(rows) if rows else ONT_OFFLINE
