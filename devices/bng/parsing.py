"""``show running-config interface X`` -> SubInterface, via the ntc-templates parser."""

from __future__ import annotations

import re

from fiberflow.devices.bng.models import SubInterface
from fiberflow.devices.textfsm_parse import parse_ntc

INVALID = re.compile(r"^\s*% Invalid input detected", re.M)


def parse_running_interfaces(text: str) -> list[SubInterface]:
    # A real IOS ends `show running-config interface X` with "end"; the ntc template
    # (built from multi-interface captures where each block ends in "!") records on "!"
    # and rejects "end", so turn the trailing "end" into the "!" it expects.
    body = re.sub(r"^end\s*\Z", "!", text.rstrip() + "\n", flags=re.M)
    if not body.rstrip().endswith("!"):
        body = body.rstrip() + "\n!\n"
    rows = parse_ntc("cisco_ios", "show running-config interface", body)
    return [_row(r) for r in rows]


def _opt(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _row(r: dict[str, object]) -> SubInterface:
    outer, inner = _opt(r.get("outer_vlan")), _opt(r.get("inner_vlan"))
    return SubInterface(
        name=str(r["interface"]),
        vlan=int(outer) if outer else None,
        inner_vlan=int(inner) if inner else None,
        description=_opt(r.get("description")),
        ip_address=_opt(r.get("ip_address")),
        netmask=_opt(r.get("netmask")),
        policy_in=_opt(r.get("input_policy")),
        policy_out=_opt(r.get("output_policy")),
    )
