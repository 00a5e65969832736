"""Bulk runs whose parent died: started again, from the items table.

A worker SIGKILLed mid-batch leaves its parent run Running (no hook runs) or Crashed.
Prefect's flow retries do not help: they retry a run whose code raised (Failed), never
a Crashed one, and nothing retries a run whose process vanished. So this pass, run by
the API's reconciler loop, finds open bulk runs whose parent will never finish (the
same diagnosis as a service's run: ended badly, process gone, no heartbeat), marks it
Crashed and starts a new parent for the same bulk (idempotency key naming the dead
run: one new parent whichever API replica gets there). The new parent resumes from the
items: ``running`` items are settled from their child runs, ``pending`` ones start.

Items of an ended bulk (a parent that failed or was cancelled in the Prefect UI) still
``running`` are settled from their child runs here too, so every item reaches exactly
one terminal state.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.core.db.models import BulkItem, BulkRun
from fiberflow.core.db.models.bulk import BULK_OPEN, ItemState
from fiberflow.core.launch import launch_bulk

log = logging.getLogger(__name__)
GRACE = timedelta(seconds=20)  # a parent younger than this may not have started yet


def _open_bulks(sessions: sessionmaker[Session]) -> list[tuple[str, str, str | None]]:
    cutoff = datetime.now(UTC) - GRACE
    with sessions() as s:
        rows = s.execute(
            select(BulkRun.id, BulkRun.flow_run_id, BulkRun.run_process, BulkRun.created_at)
            .where(BulkRun.status.in_([b.value for b in BULK_OPEN]))
            .where(BulkRun.flow_run_id.is_not(None))
        ).tuples()
        return [
            (bid, run_id, process)
            for bid, run_id, process, created in rows
            if run_id and (created if created.tzinfo else created.replace(tzinfo=UTC)) < cutoff
        ]


async def restart_dead_parents(sessions: sessionmaker[Session], prefect_api: str) -> list[str]:
    """One pass; the ids of the bulk runs given a new parent."""
    from fiberflow.stack.reconciler import diagnose, mark_crashed

    restarted = []
    async with httpx.AsyncClient(base_url=prefect_api, timeout=5) as client:
        for bulk_id, run_id, process in _open_bulks(sessions):
            reason = await diagnose(client, run_id, process)
            if reason is None:
                continue
            await mark_crashed(prefect_api, run_id, reason)
            new = await launch_bulk(bulk_id, idempotency_key=f"bulk-{bulk_id}-after-{run_id}")
            with sessions() as s, s.begin():
                s.execute(
                    update(BulkRun)
                    .where(BulkRun.id == bulk_id, BulkRun.flow_run_id == run_id)
                    .values(flow_run_id=new, run_process=None)
                )
            log.warning(
                "bulk run parent died (%s); started it again", reason,
                extra={"bulk_id": bulk_id, "flow_run_id": run_id, "new_flow_run_id": new},
            )  # fmt: skip
            restarted.append(bulk_id)
    return restarted


def settle_orphans(sessions: sessionmaker[Session]) -> int:
    """Settle ``running`` items of ended bulks whose child run has ended."""
    from fiberflow.tasks.bulk_start import settle

    with sessions() as s:
        rows = s.execute(
            select(BulkItem.bulk_id, BulkItem.service_id, BulkItem.flow_run_id)
            .join(BulkRun, BulkRun.id == BulkItem.bulk_id)
            .where(BulkRun.status.not_in([b.value for b in BULK_OPEN]))
            .where(BulkItem.state == ItemState.RUNNING.value)
            .where(BulkItem.flow_run_id.is_not(None))
            .limit(1000)
        ).tuples()
        by_bulk: dict[str, dict[str, str]] = {}
        for bulk_id, sid, run_id in rows:
            by_bulk.setdefault(bulk_id, {})[sid] = str(run_id)
    return sum(len(settle(bulk_id, running)) for bulk_id, running in by_bulk.items())


async def bulk_pass(sessions: sessionmaker[Session], prefect_api: str) -> None:
    """The reconciler loop's bulk part; logs and swallows its own errors."""
    try:
        await restart_dead_parents(sessions, prefect_api)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("bulk run recovery pass failed")
    try:
        await asyncio.to_thread(settle_orphans, sessions)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("bulk item settling pass failed")
