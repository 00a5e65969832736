"""The drift check: every device read a fixed number of times, the whole fleet compared
with the database in memory, a reprovisioning run only for the services that drifted.

Work is proportional to devices, not services: each OLT (``display ont info F all``,
``display service-port all``), each BNG (``show running-config``) and the RADIUS tables
(one SELECT per table) are read once per run, in parallel, each inside its device's
session limit. Services in sync get no run and no event; a drifted one gets a
``reprovision`` subflow of its own (its ``service.reprovisioning.*`` events, its run
history), which reads its devices again before it changes anything. A device that
cannot be read leaves its services unchecked: reported, neither repaired nor failed.

The nightly deployment (``reprovision-nightly``) and ``POST /api/v1/drift-checks`` run
this flow; ``GET /api/v1/services/{id}/drift`` runs it for one service (``service_id``):
that service's devices only, no repair, no orphans.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.devices.bng.fleet import BngFleet
from fiberflow.devices.olt.fleet import OltFleet
from fiberflow.devices.radius.types import RadiusSubscriber
from fiberflow.flows.reprovision import reprovision
from fiberflow.tasks import drift_report, fleet_drift, service_ops
from fiberflow.tasks.fleet_compare import RADIUS, Orphan, Snapshot, compare, devices_of, orphans
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)

# Device reads and repairs at once; the per-device session limits still bind.
PARALLELISM = 8


@task(name="repair-drifted", cache_policy=NO_CACHE)
def _repair(service_id: str) -> tuple[str, str]:
    """(outcome, error): ``repaired``; ``in_sync`` (gone by the time its run read the
    devices); ``skipped`` (no longer active: another run took it); ``failed``."""
    if not service_ops.claim(service_id, Operation.REPROVISIONING):
        return "skipped", ""
    try:
        result: dict[str, str] = reprovision(service_id)
        return result["result"], ""
    except Exception as exc:
        # As the nightly run of old: a subflow that never began gives its claim back.
        service_ops.release(service_id, Operation.REPROVISIONING)
        log.warning("repair of a drifted service failed: %s", exc,
                    extra={"service_id": service_id})  # fmt: skip
        return "failed", str(exc)[:500]


def _read(names: tuple[list[str], list[str], bool]) -> tuple[Snapshot, list[str]]:
    """Read the named OLTs, BNGs (and RADIUS) in parallel; the ones that fail are
    unreadable, with their error."""
    olt_names, bng_names, with_radius = names
    futures: dict[str, PrefectFuture[Any]] = {}
    for name in olt_names:
        futures[name] = fleet_drift.read_olt.submit(name)
    for name in bng_names:
        futures[name] = fleet_drift.read_bng.submit(name)
    if with_radius:
        futures[RADIUS] = fleet_drift.read_radius.submit()
    wait(list(futures.values()))
    olts: dict[str, OltFleet] = {}
    bngs: dict[str, BngFleet] = {}
    radius: dict[str, RadiusSubscriber] | None = None
    unreadable: dict[str, str] = {}
    for name, fut in futures.items():
        try:
            value = fut.result()
        except Exception as exc:
            unreadable[name] = str(exc) or type(exc).__name__
            log.warning("device unreadable", extra={"device": name, "error": unreadable[name]})
            continue
        if isinstance(value, OltFleet):
            olts[name] = value
        elif isinstance(value, BngFleet):
            bngs[name] = value
        else:
            radius = value
    return Snapshot(olts, bngs, radius, unreadable), sorted(set(futures) - set(unreadable))


@flow(
    name=catalogue.DRIFT_CHECK.flow,
    # Prefect types the runner generic over its futures; its own docs write it this way.
    task_runner=ThreadPoolTaskRunner(max_workers=PARALLELISM),  # type: ignore[arg-type]
    on_crashed=[drift_report.abandoned],
    on_cancellation=[drift_report.abandoned],
)
def drift_check(
    check_id: str | None = None, remove_orphans: bool = False, service_id: str | None = None
) -> dict[str, Any]:
    started = time.monotonic()
    check_id = drift_report.start(check_id, remove_orphans=remove_orphans,
                                  service_id=service_id, flow_run_id=str(flow_run.id))  # fmt: skip
    try:
        report = _check(remove_orphans, service_id)
    except BaseException as exc:
        drift_report.fail(check_id, str(exc) or type(exc).__name__)
        raise
    drift_report.finish(check_id, report, time.monotonic() - started)
    return {"id": check_id, **report}


def _removal_order(orphan: Orphan) -> int:
    return ("service-port", "ont", "sub-interface", "radius-user").index(orphan.kind)


def _check(remove_orphans: bool, service_id: str | None) -> dict[str, Any]:
    inv = runtime().inventory
    # Services first, devices after: a service created meanwhile is not checked, and
    # owners are read again after the devices, so its state is not taken for an orphan.
    services = fleet_drift.load_services([service_id] if service_id else None)
    if service_id is not None:
        olt, bng, _ = devices_of(services[0], inv) if services else ("", "", RADIUS)
        names = ([olt] if olt else [], [bng] if bng else [], True)
    else:
        names = ([o.name for o in inv.olts], [b.name for b in inv.bngs], True)
    snapshot, devices_read = _read(names)
    owners = fleet_drift.load_services() if service_id is None else services
    result = compare(services, owners, snapshot, inv)
    if service_id is not None:
        result.orphans = []  # one service's devices hold everyone's state: not its to judge
    outcome = drift_report.Outcome()
    if service_id is None:
        futures = {sid: _repair.submit(sid) for sid in result.drifted}
        wait(list(futures.values()))
        for sid, fut in futures.items():
            outcome.repairs[sid], error = fut.result()
            if error:
                outcome.errors[sid] = error
    if remove_orphans and result.orphans:
        # Compared with the services as they are now: one may have taken an orphan over.
        fresh = orphans(fleet_drift.load_services(), snapshot, inv)
        # Service-ports before ONTs: deleting an ONT takes its service-ports with it.
        for orphan in sorted(fleet_drift.still_orphans(result.orphans, fresh), key=_removal_order):
            try:
                if fleet_drift.remove_orphan(orphan):
                    outcome.removed.append(orphan)
            except Exception:  # one orphan that will not go does not stop the others
                log.exception("orphan not removed", extra=orphan.public())
    return drift_report.build(result, outcome, services, devices_read, dict(snapshot.unreadable))
