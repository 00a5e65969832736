"""``GET /metrics``: Prometheus text for this machine's fiberflow processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``fiberflow up`` does), the answer adds up the
per-process files of every process that shares the directory: this API, the flow runs
its machine's workers started, and processes that have exited (their counters and
histograms stay; live gauges such as ``realtime_sse_connections`` count live processes
only). Without it, the answer is this process's default registry. docs/operations.md,
"Metrics", says how to scrape several machines.
"""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

import fiberflow.core.metrics  # noqa: F401  (registers the metric families this endpoint shows)
from fiberflow.core.metrics import multiprocess_dir

router = APIRouter(tags=["observability"])


def registry() -> CollectorRegistry:
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    # A fresh registry per scrape: the collector reads the files as they are now.
    collected = CollectorRegistry()
    MultiProcessCollector(collected, path=path)  # type: ignore[no-untyped-call]
    return collected


def process_exit() -> None:
    """Drop this process's live gauges (e.g. its SSE connections) from the sum."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "the metrics"}},
)
def metrics() -> Response:
    # Sync: reading the per-process files is blocking I/O, so it runs in the threadpool.
    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)
