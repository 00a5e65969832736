"""All-or-nothing bulk seeding of a lab device, and its undo (admin ops ``seed`` with
``atomic: true`` and ``unseed``).

An atomic seed checks the whole batch, against the device's state and against itself,
under the state lock, before it changes anything: one refusal refuses the batch and the
state is untouched. Only then is every item applied, still under the lock, so no CLI
session sees half a batch. ``unseed`` deletes what a seed added (matched by serial or
VLAN, so it never takes away an ONT or sub-interface someone else has put there since):
the rollback of ``fiberflow lab seed`` when a later store fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fiberflow.lab.bng_state import BngState, SubIf
from fiberflow.lab.olt_plugs import SERIAL
from fiberflow.lab.olt_state import (
    MAX_ONT_ID,
    MAX_SP_INDEX,
    ONT_ID_EXISTS,
    ONT_MISSING,
    PARAM_ERROR,
    PORT_MISSING,
    SN_EXISTS,
    SP_EXISTS,
    SP_INDEX_CONFLICT,
    Key,
    OltState,
    ServicePort,
)


@dataclass(frozen=True)
class _Ont:
    key: Key
    serial: str
    description: str
    line: int
    srv: int
    active: bool

    @property
    def where(self) -> str:
        return f"ont {'/'.join(map(str, self.key[:3]))} {self.key[3]}"


def _fsp(text: object) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)/(\d+)", str(text))
    if m is None:
        raise ValueError(f"fsp {text!r} is not F/S/P")
    return int(m[1]), int(m[2]), int(m[3])


def _serial(text: str) -> str:
    return text.upper() if SERIAL.fullmatch(text) else text  # as OltState keeps it


def _onts(items: list[dict[str, Any]]) -> list[_Ont]:
    return [
        _Ont(
            (*_fsp(o["fsp"]), int(o["ont_id"])),
            _serial(str(o["serial"])),
            str(o["description"]),
            int(o["line_profile_id"]),
            int(o["service_profile_id"]),
            bool(o.get("active", True)),
        )
        for o in items
    ]


def _service_ports(items: list[dict[str, Any]]) -> list[tuple[int | None, ServicePort]]:
    out = []
    for sp in items:
        f, s, p = _fsp(sp["fsp"])
        vlan = int(sp["vlan"])
        row = ServicePort(0, vlan, f, s, p, int(sp["ont_id"]), int(sp["gem_port"]),
                          int(sp.get("user_vlan", vlan)))  # fmt: skip
        index = sp.get("index")
        out.append((None if index is None else int(index), row))
    return out


def _olt_refusals(
    state: OltState, onts: list[_Ont], sps: list[tuple[int | None, ServicePort]]
) -> list[str]:
    """Why the batch would not apply whole (empty: it will). Holds ``state.lock``."""
    failures: list[str] = []
    serials: set[str] = set()
    keys: set[Key] = set()
    for o in onts:
        failure = None
        if not re.fullmatch(r"[^\"\r\n]*", o.description) or not re.fullmatch(r"\S+", o.serial):
            failures.append(f"{o.where}: not what the CLI accepts")
            continue
        if not state.has_port(*o.key[:3]):
            failure = PORT_MISSING
        elif not 0 <= o.key[3] <= MAX_ONT_ID:
            failure = PARAM_ERROR
        elif o.serial in serials or state.find_serial(o.serial) is not None:
            failure = SN_EXISTS
        elif o.key in keys or o.key in state.onts:
            failure = ONT_ID_EXISTS
        if failure:
            failures.append(f"{o.where}:{failure}")
        serials.add(o.serial)
        keys.add(o.key)
    indexes: set[int] = set()
    gems: set[tuple[Key, int, int]] = set()
    for index, sp in sps:
        key = (sp.frame, sp.slot, sp.port, sp.ont_id)
        taken = {(other.gem_port, other.vlan) for other in state.ports_of(*key)}
        failure = None
        if key not in keys and key not in state.onts:
            failure = ONT_MISSING
        elif (key, sp.gem_port, sp.vlan) in gems or (sp.gem_port, sp.vlan) in taken:
            failure = SP_EXISTS
        elif index is not None and (index in indexes or index in state.service_ports):
            failure = SP_INDEX_CONFLICT
        if failure:
            where = f"service-port vlan {sp.vlan} {'/'.join(map(str, key[:3]))} ont {key[3]}"
            failures.append(f"{where}:{failure}")
        gems.add((key, sp.gem_port, sp.vlan))
        if index is not None:
            indexes.add(index)
    if len(state.service_ports) + len(sps) > MAX_SP_INDEX + 1:
        failures.append(f"service-ports:{SP_INDEX_CONFLICT}")
    return failures


def olt_seed(
    state: OltState, onts: list[dict[str, Any]], service_ports: list[dict[str, Any]]
) -> dict[str, Any]:
    """Add every ONT and service-port, or (any refused) none; ``failures`` says why."""
    try:
        parsed, sps = _onts(onts), _service_ports(service_ports)
    except (KeyError, TypeError, ValueError) as exc:
        return {"onts": 0, "service_ports": 0, "failures": [f"malformed item: {exc!r}"]}
    with state.lock:
        failures = _olt_refusals(state, parsed, sps)
        if failures:
            return {"onts": 0, "service_ports": 0, "failures": failures}
        added: list[Key] = []
        for o in parsed:
            failure = state.add_ont(o.key, o.serial, o.description, o.line, o.srv)
            if failure is None and not o.active:
                failure = state.set_active(o.key, False)
            if failure is not None:  # checked above: only a bug gets here
                return _undo(state, added, f"{o.where}:{failure}")
            added.append(o.key)
        for index, sp in sps:
            failure = state.add_service_port(index, sp)
            if failure is not None:
                return _undo(state, added, f"service-port vlan {sp.vlan}:{failure}")
    return {"onts": len(parsed), "service_ports": len(sps), "failures": []}


def _undo(state: OltState, added: list[Key], failure: str) -> dict[str, Any]:
    for key in reversed(added):
        state.delete_ont(key, force=True)  # also its service-ports
    return {"onts": 0, "service_ports": 0, "failures": [failure]}


def olt_unseed(state: OltState, onts: list[dict[str, Any]]) -> dict[str, Any]:
    """Delete each ONT (``fsp``, ``ont_id``, ``serial``) still holding that serial,
    with its service-ports."""
    deleted = 0
    with state.lock:
        for o in onts:
            key = (*_fsp(o["fsp"]), int(o["ont_id"]))
            view = state.view(key)
            if view is not None and view.ont.serial == _serial(str(o["serial"])):
                deleted += state.delete_ont(key, force=True) is None
    return {"onts": deleted}


def bng_seed(state: BngState, subinterfaces: list[dict[str, Any]]) -> dict[str, Any]:
    """Add every sub-interface, or (any refused) none; ``failures`` says why."""
    try:
        subs = [SubIf(**item) for item in subinterfaces]
    except TypeError as exc:
        return {"subinterfaces": 0, "failures": [f"malformed item: {exc}"]}
    with state.lock:
        failures: list[str] = []
        names: set[str] = set()
        vids: dict[tuple[int, int | None], str] = {}
        for sub in subs:
            vid = None if sub.outer_vlan is None else (sub.outer_vlan, sub.inner_vlan)
            owner = None if vid is None else vids.get(vid) or state.vlan_owner(*vid, sub.name)
            if not state.is_subif(sub.name):
                failures.append(f"{sub.name!r} is not a sub-interface of {state.uplink}")
            elif sub.ip_address and sub.outer_vlan is None:
                failures.append(f"{sub.name}: an IP address needs an encapsulation")
            elif sub.name in names or sub.name in state.subifs:
                failures.append(f"{sub.name} exists")
            elif owner:
                failures.append(f"VID {sub.outer_vlan} is already configured on {owner}")
            names.add(sub.name)
            if vid is not None:
                vids.setdefault(vid, sub.name)
        if failures:
            return {"subinterfaces": 0, "failures": failures}
        for i, sub in enumerate(subs):
            failure = state.seed(sub)
            if failure is not None:  # checked above: only a bug gets here
                for done in subs[:i]:
                    _forget(state, done.name)
                return {"subinterfaces": 0, "failures": [failure]}
    return {"subinterfaces": len(subs), "failures": []}


def bng_unseed(state: BngState, subinterfaces: list[dict[str, Any]]) -> dict[str, Any]:
    """Remove each sub-interface (``name``, ``outer_vlan``) that still has that VLAN."""
    removed = 0
    with state.lock:
        for item in subinterfaces:
            sub = state.subifs.get(str(item["name"]))
            if sub is not None and sub.outer_vlan == item.get("outer_vlan"):
                _forget(state, sub.name)
                removed += 1
    return {"subinterfaces": removed}


def _forget(state: BngState, name: str) -> None:
    # A rolled-back seed leaves no trace: not even IOS's "deleted" listing.
    state.remove(name)
    state.deleted.discard(name)
