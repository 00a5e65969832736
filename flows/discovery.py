"""Zero-touch activation: one discovery pass (the ``discover-onts`` deployment, every
minute, one pass at a time).

Reads each OLT's autofind once, keeps what it showed (``GET /api/v1/discovery``), binds
the ONTs that belong to orders awaiting them (core/discovery.py says which) and starts
each bound order's provisioning deployment. An OLT that cannot be read keeps its last
sightings and binds nothing this pass; the pass then ends failed, naming it.
"""

from __future__ import annotations

import logging

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.core.discovery import Sighting
from fiberflow.tasks.discovery import (
    bind,
    forget_other_olts,
    match,
    read_autofind,
    record_sightings,
)
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)


class OltsUnread(RuntimeError):
    """Some OLTs could not be read; their orders wait for a later pass."""


@flow(name=catalogue.DISCOVER_ONTS.flow)
def discover_onts() -> dict[str, object]:
    seen: list[Sighting] = []
    unread: list[str] = []
    olts = runtime().inventory.olts
    forget_other_olts([olt.name for olt in olts])
    for olt in olts:
        try:
            found = read_autofind(olt.name)
        except Exception as exc:
            log.warning("autofind unreadable", extra={"device": olt.name, "error": str(exc)})
            unread.append(olt.name)
            continue
        record_sightings(olt.name, found)
        seen += found
    decision = match(seen)
    started = {b.service_id: bind(b) for b in decision.bindings}
    bound = sorted(sid for sid, run in started.items() if run)
    if unread:
        raise OltsUnread(f"autofind could not be read on {', '.join(unread)}")
    return {"seen": len(seen), "bound": bound, "waiting": dict(decision.waiting)}
