"""Four-eyes approval of a bulk run: a paused parent run waiting for an ``Approval``.

The decision lives in two places that agree: the bulk row (the API records
``approved_by`` / ``rejected_by`` first, then resumes the run) and the run input (what
the Prefect UI's form, or the API, resumes the paused run with). The row is read before
pausing, so a decision taken while no parent was paused (between a crash and its
restart) is not lost; the input is checked again after resuming, so an approval from
the UI by the requester's own ``sub`` rejects the batch.
"""

from __future__ import annotations

import logging

from prefect.input import RunInput
from sqlalchemy import update

from fiberflow.core import bulk as core_bulk
from fiberflow.core.db.models import BulkRun, utcnow
from fiberflow.core.db.models.bulk import BulkStatus
from fiberflow.tasks.bulk import Reporter, cancel_requested, load, skip_pending
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)
OWN_APPROVAL = "the requester cannot approve their own bulk run"
WAITS_FROM = frozenset({BulkStatus.SCHEDULED, BulkStatus.RUNNING})


class Approval(RunInput):
    """What resumes a bulk run waiting for approval (the Prefect UI shows this form)."""

    approve: bool
    by: str


def _record(bulk_id: str, **values: object) -> None:
    """Write who decided, unless someone already did (the API writes first)."""
    with runtime().sessions() as s, s.begin():
        s.execute(
            update(BulkRun)
            .where(BulkRun.id == bulk_id)
            .where(BulkRun.approved_by.is_(None), BulkRun.rejected_by.is_(None))
            .values(**values)
        )


def reject(reporter: Reporter, reason: str) -> None:
    skip_pending(reporter, reason)
    log.warning("bulk run rejected", extra=reporter.bulk.log_extra(reason=reason))


def wait_for_approval(reporter: Reporter) -> BulkStatus | None:
    """None: approved (or no approval needed), go on; else the status the bulk ends in
    (``rejected``, ``cancelled``), its pending items already skipped."""
    bulk = reporter.bulk
    threshold = runtime().settings.approval_threshold
    if not core_bulk.needs_approval(bulk.operation, bulk.total, threshold):
        return None
    from prefect.flow_runs import pause_flow_run

    while True:
        row = load(bulk.id)
        if row.cancel_requested_at is not None:
            skip_pending(reporter, core_bulk.CANCELLED)
            return BulkStatus.CANCELLED
        if row.rejected_by is not None:
            reject(reporter, core_bulk.REJECTED)
            return BulkStatus.REJECTED
        if row.approved_by is not None:
            return None
        reporter.to_status(BulkStatus.AWAITING_APPROVAL, only_from=WAITS_FROM)
        timeout = runtime().settings.bulk_approval_timeout_seconds
        try:
            decision = pause_flow_run(wait_for_input=Approval, timeout=timeout, poll_interval=2)
        except Exception as exc:  # FlowPauseTimeout: nobody decided in time
            log.warning("bulk run approval ended without a decision: %s", exc,
                        extra=bulk.log_extra())  # fmt: skip
            reject(reporter, "rejected: approval timed out")
            return BulkStatus.REJECTED
        if cancel_requested(bulk.id):
            continue  # the loop's first check ends it cancelled
        if not decision.approve:
            _record(bulk.id, rejected_by=decision.by[:64])
            continue
        if decision.by == bulk.requested_by:
            log.warning("bulk run approved by its requester: rejected",
                        extra=bulk.log_extra(by=decision.by))  # fmt: skip
            reject(reporter, f"rejected: {OWN_APPROVAL}")
            return BulkStatus.REJECTED
        _record(bulk.id, approved_by=decision.by[:64], approved_at=utcnow())
        log.warning("bulk run approved", extra=bulk.log_extra(by=decision.by))
