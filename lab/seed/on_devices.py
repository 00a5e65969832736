"""The device side of a seed: what the lab's OLTs and BNGs hold, and the planned
services written to them, one atomic admin ``seed`` per device (lab/atomic_seed.py),
taken back with ``unseed`` when another store fails.

What each device gets is what provisioning's drivers configure: on the OLT ``ont add``
(serial, line and service profile, description) and a service-port (the VLAN on the
plan's GEM port, user-vlan the same, the lowest free index); on the BNG the sub-interface
``<uplink>.<vlan>`` with ``encapsulation dot1Q <vlan>``, the description, the address
with the pool's mask and the plan's input and output service policies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fiberflow.devices.inventory import Inventory
from fiberflow.lab.seed.errors import SeedFailed
from fiberflow.lab.seed.plan import Planned, Taken
from fiberflow.lab.seed.target import LabTarget

MAX_SHOWN = 3  # refusal lines quoted per device


def read_taken(target: LabTarget, inv: Inventory, taken: Taken) -> None:
    """Add what the devices hold (ONTs, plugged serials, sub-interfaces) to ``taken``."""
    olts, bngs = [o.name for o in inv.olts], {b.name: b for b in inv.bngs}
    dumps = target.call_all("dump", {name: {} for name in [*olts, *bngs]})
    plugs = target.call_all("plugs", {name: {} for name in olts})
    for olt in olts:
        for ont in dumps[olt]["onts"]:
            taken.ont_ids.setdefault((olt, ont["fsp"]), set()).add(int(ont["ont_id"]))
            taken.serials.add(str(ont["serial"]).upper())
        taken.serials.update(str(p["serial"]).upper() for p in plugs[olt]["plugs"])
    for name, bng in bngs.items():
        pool = ipaddress.ip_network(bng.ip_pool)
        for sub in dumps[name]["subinterfaces"]:
            if sub.get("outer_vlan") is not None:
                taken.vlans.setdefault(name, set()).add(int(sub["outer_vlan"]))
            if sub.get("ip_address"):
                ip = ipaddress.ip_address(sub["ip_address"])
                if ip in pool:
                    taken.ips.setdefault(name, set()).add(int(ip))


def payloads(services: Iterable[Planned]) -> dict[str, dict[str, Any]]:
    """Device -> the arguments of its one ``seed`` call."""
    out: dict[str, dict[str, Any]] = {}
    for p in services:
        olt = out.setdefault(p.olt, {"atomic": True, "onts": [], "service_ports": []})
        olt["onts"].append(
            {"fsp": p.pon_port, "ont_id": p.ont_id, "serial": p.serial,
             "description": p.description, "line_profile_id": p.line_profile_id,
             "service_profile_id": p.service_profile_id}
        )  # fmt: skip
        olt["service_ports"].append(
            {"fsp": p.pon_port, "ont_id": p.ont_id, "gem_port": p.gem_port, "vlan": p.vlan,
             "user_vlan": p.vlan}
        )  # fmt: skip
        bng = out.setdefault(p.bng, {"atomic": True, "subinterfaces": []})
        bng["subinterfaces"].append(
            {"name": p.interface, "description": p.description, "outer_vlan": p.vlan,
             "inner_vlan": None, "ip_address": p.ip, "netmask": p.netmask,
             "policy_in": p.policy_in, "policy_out": p.policy_out, "shutdown": False}
        )  # fmt: skip
    return out


class DevicesFailed(SeedFailed):
    """A device refused its seed or did not answer. ``touched``: the devices that may
    hold their part (they took it, or the answer was lost), to unseed."""

    def __init__(self, message: str, touched: list[str]) -> None:
        super().__init__(message)
        self.touched = touched


def seed(target: LabTarget, calls: dict[str, dict[str, Any]]) -> None:
    """One atomic ``seed`` per device, all at once; DevicesFailed if any refuses or does
    not answer (a device that refused changed nothing)."""
    errors: list[str] = []
    touched: list[str] = []
    for name, outcome in _each(target, "seed", calls).items():
        if isinstance(outcome, SeedFailed):
            errors.append(str(outcome))
            touched.append(name)
        elif outcome["failures"]:
            lines = [x.strip() for x in outcome["failures"]]
            more = f" (+{len(lines) - MAX_SHOWN} more)" if len(lines) > MAX_SHOWN else ""
            errors.append(f"{name} refused its seed: {'; '.join(lines[:MAX_SHOWN])}{more}")
        else:
            touched.append(name)
    if errors:
        raise DevicesFailed(" / ".join(errors), touched)


def unseed(target: LabTarget, calls: dict[str, dict[str, Any]]) -> list[str]:
    """Take back what ``seed`` wrote to these devices; the problems, if any (best effort:
    the caller is already failing)."""
    undo = {
        name: {"onts": args["onts"]} if "onts" in args else
              {"subinterfaces": args["subinterfaces"]}
        for name, args in calls.items()
    }  # fmt: skip
    return [str(o) for o in _each(target, "unseed", undo).values() if isinstance(o, SeedFailed)]


def _each(target: LabTarget, op: str, calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``op`` on each device in parallel: its answer, or the SeedFailed it raised."""

    def one(name: str) -> Any:
        try:
            return target.call(name, op, **calls[name])
        except SeedFailed as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(calls, pool.map(one, calls), strict=True))
