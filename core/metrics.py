"""Prometheus metrics shared by the API and flow-run processes (definitions and helpers).

A process worker starts one Python process per flow run, so the workflow and device
metrics are written in processes that nobody scrapes. With ``PROMETHEUS_MULTIPROC_DIR``
set (``fiberflow up`` sets ``<data dir>/metrics`` for every child and empties it at
start), prometheus-client keeps every value in a per-process file in that directory and
the API's ``/metrics`` adds them all up (api/metrics.py). Without it, values live in the
process's default registry. The variable must be set before any metric is created (for
flow runs: before Prefect is imported, which creates metrics of its own), so it is an
environment variable of the process, never set from code.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "unknown"

WORKFLOW_STARTED = Counter(
    "lifecycle_workflow_started_total",
    "Lifecycle flow runs started",
    ["operation", "plan"],
)
WORKFLOW_COMPLETED = Counter(
    "lifecycle_workflow_completed_total",
    "Lifecycle flow runs completed",
    ["operation", "plan"],
)
WORKFLOW_FAILED = Counter(
    "lifecycle_workflow_failed_total",
    "Lifecycle flow runs failed, crashed or cancelled",
    ["operation", "plan"],
)
WORKFLOW_DURATION = Histogram(
    "lifecycle_workflow_duration_seconds",
    "Wall time of a lifecycle flow run, start to completion or failure",
    ["operation"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)
SSE_CONNECTIONS = Gauge(
    "realtime_sse_connections",
    "Open SSE event streams",
    # Summed over live processes; a process that exits takes its share with it.
    multiprocess_mode="livesum",
)
SSE_EVENTS_SENT = Counter(
    "realtime_sse_events_sent_total",
    "Lifecycle events handed to SSE clients",
    ["event_type"],
)
DEVICE_COMMAND_DURATION = Histogram(
    "device_command_duration_seconds",
    "Latency of one device command (OLT/BNG CLI line, RADIUS request, RADIUS SQL change)",
    ["device"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RADIUS_REQUESTS = Counter(
    "radius_requests_total",
    "RADIUS requests by kind (auth, coa, disconnect) and outcome "
    "(accept, reject, ack, nak, timeout, error)",
    ["kind", "outcome"],
)


# -- the multiprocess directory -----------------------------------------------------------
def multiprocess_dir() -> str | None:
    """The directory of per-process metric files, when this process uses one."""
    return os.environ.get(MULTIPROC_ENV) or None


def metrics_dir(data_dir: Path) -> Path:
    return data_dir / "metrics"


def reset_metrics_dir(path: Path) -> Path:
    """An empty directory for a new stack: files of an earlier run would add up with ours."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- device commands and RADIUS -----------------------------------------------------------
_RADIUS_KINDS = {"Access-Request": "auth", "CoA-Request": "coa", "Disconnect-Request": "disconnect"}
_RADIUS_OUTCOMES = frozenset({"accept", "reject", "ack", "nak", "timeout", "error"})


def radius_request(command: str, output: str) -> tuple[str, str] | None:
    """(kind, outcome) of an audit record of a RADIUS request, None for anything else.

    The RADIUS client's records read ``Access-Request User-Name=...`` / ``CoA-Request``
    / ``Disconnect-Request`` with output ``accept``, ``nak Error-Cause=...``, ``timeout``
    or ``error <reason>``.
    """
    kind = _RADIUS_KINDS.get(command.split(" ", 1)[0])
    if kind is None:
        return None
    word = output.split(" ", 1)[0].lower()
    return kind, word if word in _RADIUS_OUTCOMES else "error"


def observe_device_command(device: str, command: str, output: str, duration_ms: float) -> None:
    DEVICE_COMMAND_DURATION.labels(device=device).observe(max(duration_ms, 0.0) / 1000)
    radius = radius_request(command, output)
    if radius is not None:
        RADIUS_REQUESTS.labels(kind=radius[0], outcome=radius[1]).inc()


# -- workflows ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    operation: str
    plan: str
    started: float  # time.monotonic()


_RUNS: dict[str, _Run] = {}
_LOCK = threading.Lock()


def workflow_started(run_id: str, operation: str, plan: str | None) -> None:
    run = _Run(operation, plan or UNKNOWN, time.monotonic())
    with _LOCK:
        _RUNS[run_id] = run
    WORKFLOW_STARTED.labels(operation=run.operation, plan=run.plan).inc()


def workflow_ended(
    run_id: str,
    *,
    ok: bool,
    labels: Callable[[], tuple[str, str | None]],
    started_at: datetime | None = None,
) -> float | None:
    """Count a run's end (completed or failed) and observe its duration.

    The labels and start time ``workflow_started`` recorded in this process win;
    ``labels()`` (operation, plan) and ``started_at`` (the run's start as Prefect has
    it) are the fallback for a run that started elsewhere. Returns the duration in
    seconds, when known.
    """
    with _LOCK:
        run = _RUNS.pop(run_id, None)
    duration: float | None = None
    plan: str | None
    if run is not None:
        operation, plan = run.operation, run.plan
        duration = time.monotonic() - run.started
    else:
        operation, plan = labels()
        if started_at is not None:
            at = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
            duration = max((datetime.now(UTC) - at).total_seconds(), 0.0)
    counter = WORKFLOW_COMPLETED if ok else WORKFLOW_FAILED
    counter.labels(operation=operation, plan=plan or UNKNOWN).inc()
    if duration is not None:
        WORKFLOW_DURATION.labels(operation=operation).observe(duration)
    return duration


# -- drift checks ---------------------------------------------------------------------------
DRIFT_CHECK_SERVICES = Counter(
    "drift_check_services_total",
    "Services seen by drift checks, by outcome (checked, in_sync, drifted, repaired, failed, "
    "skipped, unreadable)",
    ["outcome"],
)
DRIFT_CHECK_ORPHANS = Counter(
    "drift_check_orphans_total",
    "Orphans drift checks found (device or RADIUS state no live service owns), by kind",
    ["kind"],
)
DRIFT_CHECK_DURATION = Histogram(
    "drift_check_duration_seconds",
    "Wall time of a fleet drift check, start to report",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)


def drift_check_finished(
    counts: dict[str, int], orphans_by_kind: dict[str, int], duration_s: float
) -> None:
    for outcome, n in counts.items():
        DRIFT_CHECK_SERVICES.labels(outcome=outcome).inc(n)
    for kind, n in orphans_by_kind.items():
        DRIFT_CHECK_ORPHANS.labels(kind=kind).inc(n)
    DRIFT_CHECK_DURATION.observe(max(duration_s, 0.0))
