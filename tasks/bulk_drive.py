"""The parent's loop: start the pending services at a steady pace, within the device
caps and outside blackout windows, settle the ones whose run ended, stop starting on a
cancel. Resumable: everything it needs is read back from the items table, so a parent
started again after a crash carries on where the dead one stopped.

The loop claims each item itself, at the pace; the rest of a start (the status
transition, the child run created on the Prefect server, its id recorded) runs in a
small pool of threads: one start takes ~1.5 s on a busy machine, so starting one after
another could not hold more than ~40 a minute whatever the rate set.
"""

from __future__ import annotations

import contextvars
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from fiberflow.core import blackout
from fiberflow.core import bulk as core_bulk
from fiberflow.core.db.models.bulk import BulkStatus, ItemState
from fiberflow.tasks import bulk_start
from fiberflow.tasks.bulk import Reporter, cancel_requested, item_rows, last_start, skip_pending
from fiberflow.tasks.bulk_pace import DeviceCaps, Pacer
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)
TICK = 0.2  # seconds between passes while waiting (pace, caps, running services)
BLACKOUT_NAP = 5.0  # at most this long asleep in a window: a cancel is seen soon
SCAN = 1_000  # pending services looked at for one whose devices have room
HELD = frozenset({BulkStatus.RUNNING, BulkStatus.SCHEDULED})
STARTING = frozenset({BulkStatus.SCHEDULED, BulkStatus.AWAITING_APPROVAL})
STARTERS = 4  # starts in flight at once (each mostly waits on the Prefect server)
Started = Future[tuple[core_bulk.Change, str | None]]


def drive(reporter: Reporter) -> BulkStatus:
    """Run the batch to its end; the status it ends in (completed or cancelled)."""
    with ThreadPoolExecutor(STARTERS, thread_name_prefix="bulk-start") as pool:
        return _drive(reporter, pool)


def _drive(reporter: Reporter, pool: ThreadPoolExecutor) -> BulkStatus:
    bulk = reporter.bulk
    settings = runtime().settings
    windows = settings.blackout_windows()
    queue = [sid for sid, _ in item_rows(bulk.id, ItemState.PENDING)]
    running: dict[str, str | None] = dict(item_rows(bulk.id, ItemState.RUNNING))
    targets, limits = bulk_start.targets([*queue, *running])
    caps = DeviceCaps({d: n * settings.bulk_runs_per_session for d, n in limits.items()})
    pacer = Pacer.per_minute(settings.bulk_rate, last_start(bulk.id))
    for sid in running:
        caps.take(_devices(targets, sid))
    for sid, run_id in list(running.items()):
        if run_id is None:  # claimed by a dead parent, run id never recorded
            change, running[sid] = bulk_start.recover(bulk, sid)
            _booked(reporter, caps, targets, running, sid, change)
    starting: dict[str, Started] = {}
    checked: set[str] = set()
    while queue or running or starting:
        for sid, future in list(starting.items()):
            if future.done():
                del starting[sid]
                change, running[sid] = future.result()
                _booked(reporter, caps, targets, running, sid, change)
        ended = bulk_start.settle(bulk.id, {s: r for s, r in running.items() if r})
        for change in ended:
            running.pop(change.service_id, None)
            caps.give(_devices(targets, change.service_id))
        reporter.add(ended)
        if queue and cancel_requested(bulk.id):
            skip_pending(reporter, core_bulk.CANCELLED)
            queue.clear()
        if not queue:
            reporter.flush()
            if running or starting:
                time.sleep(TICK)
            continue
        now = datetime.now(UTC)
        if blackout.is_blackout(windows, now):
            reporter.to_status(BulkStatus.SCHEDULED, only_from=HELD)
            until = (blackout.window_end(windows, now) - now).total_seconds()
            time.sleep(max(TICK, min(BLACKOUT_NAP, until)))
            continue
        reporter.to_status(BulkStatus.RUNNING, only_from=STARTING)
        index = next((i for i, sid in enumerate(queue[:SCAN])
                      if caps.fits(_devices(targets, sid))), None)  # fmt: skip
        if index is None or len(starting) >= STARTERS:
            time.sleep(TICK)
            continue
        sid = queue[index]
        if sid not in checked:
            # A status that forbids the operation skips at once: no wait for the pace.
            checked.add(sid)
            reason = bulk_start.precheck(bulk, sid)
            if reason is not None:
                queue.pop(index)
                change = bulk_start.skip(bulk, sid, reason)
                reporter.add([change] if change else [])
                continue
        if (wait := pacer.wait()) > 0:
            time.sleep(min(wait, TICK))
            continue
        queue.pop(index)
        if not bulk_start.claim(bulk, sid):
            continue  # a cancel skipped it first
        pacer.started()
        caps.take(_devices(targets, sid))  # booked now; given back if it does not run
        running[sid] = None
        # The child run is created under this parent (as_subflow): the thread needs the
        # parent's Prefect run context, a copy of its own for each start.
        context = contextvars.copy_context()
        starting[sid] = pool.submit(context.run, bulk_start.begin_and_launch, bulk, sid)
    reporter.flush(force=True)
    return BulkStatus.CANCELLED if cancel_requested(bulk.id) else BulkStatus.COMPLETED


def _devices(targets: dict[str, bulk_start.Target], sid: str) -> tuple[str, ...]:
    target = targets.get(sid)
    return target.devices if target else ()


def _booked(reporter: Reporter, caps: DeviceCaps, targets: dict[str, bulk_start.Target],
            running: dict[str, str | None], sid: str,
            change: core_bulk.Change | None) -> None:  # fmt: skip
    """Report a start, recovered or finished in the pool (its devices were booked as
    running): one that did not end up running frees them at once."""
    if change is None:
        return
    if change.state != ItemState.RUNNING.value:
        running.pop(sid, None)
        caps.give(_devices(targets, sid))
    reporter.add([change])
