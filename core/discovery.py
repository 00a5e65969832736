"""Zero-touch activation: which ONTs seen in OLT autofind bind to which waiting orders.

Pure: the discovery flow decides with it what to bind, and ``GET /api/v1/discovery``
explains with it why an order still waits. The rules:

- an order that names its serial binds when that serial appears on its OLT and PON port,
  whatever else waits or appears there;
- an order without a serial binds only when it is the one order left waiting on its
  PON port and exactly one unknown ONT appears there (unknown: no service and no
  waiting order names its serial);
- everything else stays waiting, with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sighting:
    """An unregistered ONT an OLT lists in autofind."""

    olt: str
    pon_port: str  # "F/S/P", no padding
    serial: str  # 16 upper-case hex digits


@dataclass(frozen=True, slots=True)
class WaitingOrder:
    service_id: str
    olt: str
    pon_port: str
    ont_serial: str | None


@dataclass(frozen=True, slots=True)
class Binding:
    service_id: str
    serial: str
    by_serial: bool  # the order named this serial (False: the one unknown ONT on its port)


@dataclass(frozen=True, slots=True)
class Decision:
    bindings: list[Binding] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # service id -> why it waits


def decide(
    sightings: Iterable[Sighting],
    orders: Iterable[WaitingOrder],
    held: Mapping[str, str] | None = None,
) -> Decision:
    """What to bind. ``held`` maps the serials of live services (not waiting, not
    terminated or failed) to their service ids: such an ONT is never unknown."""
    held = held or {}
    seen = list(sightings)
    waiting = list(orders)
    named = {o.ont_serial for o in waiting if o.ont_serial}
    where: dict[str, list[Sighting]] = defaultdict(list)
    for s in seen:
        where[s.serial].append(s)
    decision = Decision()

    left: dict[tuple[str, str], list[WaitingOrder]] = defaultdict(list)
    for order in waiting:
        if order.ont_serial is None:
            left[(order.olt, order.pon_port)].append(order)
            continue
        places = where.get(order.ont_serial, [])
        if any(s.olt == order.olt and s.pon_port == order.pon_port for s in places):
            decision.bindings.append(Binding(order.service_id, order.ont_serial, by_serial=True))
            continue
        left[(order.olt, order.pon_port)].append(order)
        if places:
            at = ", ".join(f"{s.olt} {s.pon_port}" for s in places)
            decision.waiting[order.service_id] = (
                f"its ONT {order.ont_serial} appears on {at}, not on the ordered "
                f"{order.olt} {order.pon_port}"
            )
        else:
            decision.waiting[order.service_id] = (
                f"its ONT {order.ont_serial} has not appeared in autofind yet"
            )

    unknown: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in seen:
        if s.serial not in held and s.serial not in named:
            unknown[(s.olt, s.pon_port)].append(s.serial)

    for (olt, port), remaining in left.items():
        serial_less = [o for o in remaining if o.ont_serial is None]
        if not serial_less:
            continue
        found = sorted(unknown.get((olt, port), []))
        if len(remaining) > 1:
            reason = (
                f"{len(remaining)} orders wait on {olt} {port}: an ONT there cannot tell "
                "which it belongs to; give each its serial"
            )
        elif not found:
            reason = f"no unknown ONT has appeared on {olt} {port} yet"
        elif len(found) > 1:
            reason = (
                f"{len(found)} unknown ONTs appeared on {olt} {port} ({', '.join(found)}): "
                "give the order its serial"
            )
        else:
            decision.bindings.append(Binding(serial_less[0].service_id, found[0], by_serial=False))
            continue
        for order in serial_less:
            decision.waiting[order.service_id] = reason
    return decision
