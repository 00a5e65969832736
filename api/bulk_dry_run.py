"""``POST /api/v1/bulk/{operation}?dry_run=true``: every service's plan, nothing changed.

The route's own checks come first and answer exactly as without ``dry_run`` (403, 404,
422); then, in request order, each service is either skipped for the reason the parent
run would skip it (core.bulk.refusal: its status forbids the operation, the plan it
already has ...), or planned by the planner the shell handed to ``create_app`` (the
single-service dry run's: read-only device sessions, the drivers' render step). A run
that would fail at its validating step is listed under ``failed``. No bulk row, no item,
no run, no write; a device that cannot be read answers 503, as a single dry run does.

A plan opens read-only sessions on the service's devices, one service after the other:
a dry run covers at most ``DRY_RUN_MAX`` services (422 beyond, before any device is
read), which keeps the request within a minute or so on slow links.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.api.bulk_schemas import BulkChangeOut, BulkDryRunOut, BulkItemReason
from fiberflow.api.dry_run import PLANNER, Planner
from fiberflow.api.state import AppState
from fiberflow.core import bulk as core_bulk
from fiberflow.core.db.models import ServiceInstance
from fiberflow.devices.base import DeviceError, PermanentDeviceError
from fiberflow.devices.changes import Refused
from fiberflow.devices.inventory import Inventory

log = logging.getLogger(__name__)
DRY_RUN_MAX = 50
_CHUNK = 5_000


def _rows(session: Session, ids: list[str]) -> dict[str, tuple[str, str]]:
    """Each service's (status, plan)."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        q = select(ServiceInstance.id, ServiceInstance.status, ServiceInstance.plan)
        for sid, st, plan in session.execute(q.where(ServiceInstance.id.in_(chunk))).tuples():
            found[sid] = (st, plan)
    return found


def answer(
    state: AppState,
    session: Session,
    inventory: Inventory,
    operation: str,
    params: Mapping[str, Any],
    ids: list[str],
) -> BulkDryRunOut:
    if len(ids) > DRY_RUN_MAX:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"dry_run: at most {DRY_RUN_MAX} services per dry run, this one has {len(ids)} "
            "(dry-run a sample of them: each service's plan is its own)",
        )
    planner: Planner | None = state.extras.get(PLANNER)
    if planner is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "dry runs are not available in this API process")  # fmt: skip
    op = core_bulk.OPERATIONS[operation]
    rows = _rows(session, ids)
    # No transaction stays open across device reads (on SQLite it would hold the lock).
    session.rollback()
    gem_ports = {p.name: p.gem_port for p in inventory.plans}
    out = BulkDryRunOut(operation=operation, count=len(ids), changes=[], skipped=[], failed=[])
    for sid in ids:
        st, plan = rows.get(sid, (None, None))
        reason = core_bulk.refusal(op, params, st, plan, gem_ports)
        if reason is not None:
            out.skipped.append(BulkItemReason(service_id=sid, reason=reason))
            continue
        try:
            changes = planner(op, sid, params)
        except (Refused, PermanentDeviceError) as exc:  # its validating step would fail
            out.failed.append(BulkItemReason(service_id=sid, reason=str(exc)))
            continue
        except DeviceError as exc:
            log.warning("bulk dry run: device unreadable", extra={"device": exc.device,
                        "service_id": sid, "operation": operation})  # fmt: skip
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                f"cannot read {exc.device}: {exc.message}") from None  # fmt: skip
        out.changes.extend(
            BulkChangeOut(service_id=sid, target=c.target, kind=c.kind, lines=list(c.lines))
            for c in changes
        )
    log.info(
        "bulk dry run",
        extra={"operation": operation, "count": len(ids), "changes": len(out.changes),
               "skipped": len(out.skipped), "failed": len(out.failed)},
    )  # fmt: skip
    return out
