"""A change as data: what one system would get from an operation (its dry run).

``target`` is a device name, ``radius`` or ``ipam``; ``kind`` is ``cli`` (configuration
lines, in the order they are sent), ``rows`` (RADIUS rows written ``+`` or removed
``-``, secrets shown as ``***``) or ``allocation`` (IPAM: ``ip 100.64.0.17``,
``vlan 1017``, ``release ip ...``). Drivers produce the lines (``Result.lines``); a
planner collects them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["cli", "rows", "allocation"]
RADIUS = "radius"
IPAM = "ipam"


@dataclass(frozen=True, slots=True)
class Change:
    target: str
    kind: Kind
    lines: tuple[str, ...]


class Refused(ValueError):
    """The operation cannot run as asked (a real run would fail its validating step):
    the reason, naming the field when there is one."""


def merged(changes: Iterable[Change]) -> list[Change]:
    """Drop empty changes; join consecutive ones of the same target and kind (one
    device's lines stay in the order they would be sent)."""
    out: list[Change] = []
    for c in changes:
        if not c.lines:
            continue
        if out and (out[-1].target, out[-1].kind) == (c.target, c.kind):
            out[-1] = Change(c.target, c.kind, out[-1].lines + c.lines)
        else:
            out.append(c)
    return out
