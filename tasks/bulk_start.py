"""One service of a bulk run: check, claim, begin, launch its run; settle it once the
run ended.

A service's run is the operation's own deployment run, the one the API starts (same
flow, hooks, events, reconciler), started with ``as_subflow=True`` so the Prefect UI
shows it under the parent. It is never started twice for one bulk: the item is claimed
(``pending`` -> ``running``) by a conditional UPDATE, and the launch carries the
idempotency key ``bulk-<bulk>-<service>``, so a restarted parent that finds an item
claimed but without a run id gets the first run back, not a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy import update as sa_update

from fiberflow.core import bulk as core_bulk
from fiberflow.core import catalogue
from fiberflow.core import transition as core_transition
from fiberflow.core.bulk import Change, move
from fiberflow.core.db.models import BulkItem, ServiceInstance, utcnow
from fiberflow.core.db.models.bulk import ItemState
from fiberflow.core.launch import launch
from fiberflow.tasks.bulk import Bulk
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)
_BATCH = 200  # flow runs read per request


@dataclass(frozen=True, slots=True)
class Target:
    service_id: str
    devices: tuple[str, ...]  # the OLT and its BNG: what the run opens sessions on


def targets(service_ids: Iterable[str]) -> tuple[dict[str, Target], dict[str, int]]:
    """Each service's devices, and every device's ``max_sessions``."""
    inv = runtime().inventory
    limits = {d.name: d.max_sessions for d in [*inv.olts, *inv.bngs]}
    ids = list(service_ids)
    found: dict[str, Target] = {}
    with runtime().sessions() as s:
        for start in range(0, len(ids), 5_000):
            chunk = ids[start : start + 5_000]
            rows = s.execute(
                select(ServiceInstance.id, ServiceInstance.olt).where(ServiceInstance.id.in_(chunk))
            ).tuples()
            for sid, olt in rows:
                try:
                    devices: tuple[str, ...] = (olt, inv.bng_for(olt).name)
                except KeyError:
                    devices = (olt,)
                found[sid] = Target(sid, devices)
    return found, limits


def refusal(bulk: Bulk, row: ServiceInstance | None) -> str | None:
    """Why this service is skipped (None: it may start): core.bulk.refusal's rules."""
    gem_ports = {p.name: p.gem_port for p in runtime().inventory.plans}
    return core_bulk.refusal(
        bulk.op, bulk.params, row.status if row else None, row.plan if row else None, gem_ports
    )


def precheck(bulk: Bulk, service_id: str) -> str | None:
    with runtime().sessions() as s:
        return refusal(bulk, s.get(ServiceInstance, service_id))


def skip(bulk: Bulk, service_id: str, reason: str) -> Change | None:
    with runtime().sessions() as s, s.begin():
        ok = move(s, bulk.id, service_id, expected=ItemState.PENDING, to=ItemState.SKIPPED,
                  reason=reason)  # fmt: skip
    return Change(service_id, ItemState.SKIPPED.value, reason) if ok else None


def claim(bulk: Bulk, service_id: str) -> bool:
    """Claim one pending service (``pending`` -> ``running``, its start time now); False
    when the item is no longer pending (a cancel got it first). Then
    :func:`begin_and_launch` starts it."""
    with runtime().sessions() as s, s.begin():
        return move(s, bulk.id, service_id, expected=ItemState.PENDING,
                    to=ItemState.RUNNING, started_at=utcnow())  # fmt: skip


def begin_and_launch(bulk: Bulk, service_id: str) -> tuple[Change, str | None]:
    with runtime().sessions() as s:
        row = s.get(ServiceInstance, service_id)
        reason = refusal(bulk, row)
        if reason is None and row is not None:
            try:
                core_transition.begin(s, row, bulk.op)  # commits, or Refused (rolled back)
            except core_transition.Refused as exc:
                reason = str(exc)
    if reason is not None:
        with runtime().sessions() as s, s.begin():
            move(s, bulk.id, service_id, expected=ItemState.RUNNING,
                 to=ItemState.SKIPPED, reason=reason, started_at=None)  # fmt: skip
        return Change(service_id, ItemState.SKIPPED.value, reason), None
    return launch_child(bulk, service_id)


def launch_child(bulk: Bulk, service_id: str) -> tuple[Change, str | None]:
    """Start (or find again, by its idempotency key) the service's run; record its id."""
    from prefect.utilities.asyncutils import run_coro_as_sync

    extra = bulk.log_extra(service_id=service_id)
    try:
        run_id = run_coro_as_sync(
            launch(
                service_id,
                bulk.op,
                dict(bulk.params),
                as_subflow=True,
                tags=[f"bulk:{bulk.id}"],
                idempotency_key=f"bulk-{bulk.id}-{service_id}",
            )  # fmt: skip
        )
        assert run_id is not None
    except Exception as exc:
        log.exception("could not start a service's run", extra=extra)
        reason = f"could not start the run: {type(exc).__name__}"
        give_back(bulk, service_id, reason)
        with runtime().sessions() as s, s.begin():
            move(s, bulk.id, service_id, expected=ItemState.RUNNING, to=ItemState.FAILED,
                 reason=reason)  # fmt: skip
        return Change(service_id, ItemState.FAILED.value, reason), None
    with runtime().sessions() as s, s.begin():
        s.execute(sa_update(BulkItem)
                  .where(BulkItem.bulk_id == bulk.id, BulkItem.service_id == service_id)
                  .values(flow_run_id=run_id))  # fmt: skip
        # Unversioned, as the API records a launch: the run may be writing the row too.
        s.execute(sa_update(ServiceInstance).where(ServiceInstance.id == service_id)
                  .values(flow_run_id=run_id))  # fmt: skip
    log.info("bulk item started", extra={**extra, "flow_run_id": run_id})
    return Change(service_id, ItemState.RUNNING.value), run_id


def give_back(bulk: Bulk, service_id: str, reason: str) -> None:
    """A run that never started touched nothing: the service goes back to the status it
    started from, the error saying why (the next operation clears it)."""
    entry = catalogue.of(bulk.op)
    with runtime().sessions() as s, s.begin():
        row = s.get(ServiceInstance, service_id)
        if row is not None and row.status == entry.running.value:
            row.restore(reason)


def find_child(bulk: Bulk, service_id: str) -> str | None:
    """The run this bulk started for the service, if any (tags are set at creation)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def read() -> str | None:
        async with get_client() as client:
            tags = FlowRunFilterTags(all_=[f"bulk:{bulk.id}", f"service:{service_id}"])
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=tags), limit=1)
            return str(runs[0].id) if runs else None

    return run_coro_as_sync(read())


def recover(bulk: Bulk, service_id: str) -> tuple[Change | None, str | None]:
    """An item a dead parent claimed but whose run id it never recorded."""
    found = find_child(bulk, service_id)
    if found is not None:
        with runtime().sessions() as s, s.begin():
            s.execute(sa_update(BulkItem)
                      .where(BulkItem.bulk_id == bulk.id, BulkItem.service_id == service_id)
                      .values(flow_run_id=found))  # fmt: skip
            # On the service too, as start() records it: should the run never start (its
            # worker died taking it, so it stays Pending), the crash reconciler finds it
            # through the service and hands the service to the reconcile flow.
            s.execute(sa_update(ServiceInstance).where(ServiceInstance.id == service_id)
                      .values(flow_run_id=found))  # fmt: skip
        return None, found
    entry = catalogue.of(bulk.op)
    with runtime().sessions() as s:
        row = s.get(ServiceInstance, service_id)
        begun = row is not None and row.status == entry.running.value
        begun = begun and row is not None and row.current_operation == bulk.op.value
    if begun:  # the transition committed, the launch did not happen
        return launch_child(bulk, service_id)
    return begin_and_launch(bulk, service_id)


def run_states(run_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """(state type, message) of each run that reached a final state."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def read() -> dict[str, tuple[str, str | None]]:
        ended: dict[str, tuple[str, str | None]] = {}
        async with get_client() as client:
            for start in range(0, len(run_ids), _BATCH):
                ids = [UUID(r) for r in run_ids[start : start + _BATCH]]
                flt = FlowRunFilter(id=FlowRunFilterId(any_=ids))
                for run in await client.read_flow_runs(flow_run_filter=flt, limit=_BATCH):
                    if run.state is not None and run.state.is_final():
                        ended[str(run.id)] = (run.state.type.value, run.state.message)
        return ended

    return run_coro_as_sync(read()) or {}


def settle(bulk_id: str, running: dict[str, str]) -> list[Change]:
    """Items whose run ended: ``completed``, or ``failed`` with the service's error."""
    ended = run_states(list(running.values()))
    changes: list[Change] = []
    for sid, run_id in running.items():
        if run_id not in ended:
            continue
        kind, message = ended[run_id]
        with runtime().sessions() as s, s.begin():
            if kind == "COMPLETED":
                ok = move(s, bulk_id, sid, expected=ItemState.RUNNING, to=ItemState.COMPLETED)
                change = Change(sid, ItemState.COMPLETED.value)
            else:
                row = s.get(ServiceInstance, sid)
                reason = (row.error if row is not None and row.error else None) or (
                    f"run {kind.lower()}: {message}" if message else f"run {kind.lower()}"
                )
                ok = move(s, bulk_id, sid, expected=ItemState.RUNNING, to=ItemState.FAILED,
                          reason=reason[:2000])  # fmt: skip
                change = Change(sid, ItemState.FAILED.value, reason[:500])
        if ok:
            changes.append(change)
    return changes
