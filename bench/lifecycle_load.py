"""The load of the lifecycle benchmarks: N provisionings POSTed at once (or any
lifecycle operation, ``post_and_follow``), each followed over SSE to its end; and a
sampler of the worker's flow-run processes."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import psutil
from httpx_sse import aconnect_sse

from bench.sampling import BackgroundSampler

STREAM = "/api/v1/realtime/service-lifecycle/{}"


@dataclass
class Run:
    """One lifecycle operation as the client saw it (wall-clock seconds, time.time()).

    A provisioning POSTs ``body`` to ``/api/v1/services``; another operation POSTs to
    ``/api/v1/services/{id}/suspend|resume|terminate`` (``path``) with ``service_id``
    set beforehand."""

    body: dict[str, str]
    operation: str = "provisioning"
    path: str = "/api/v1/services"
    flow_run_id: str | None = None  # from the 202; only this run's events count
    posted_at: float = 0.0
    accepted_at: float = 0.0
    status: int = 0
    service_id: str | None = None
    first_progress_ts: float | None = None  # the event's own timestamp (hook time)
    first_progress_rx: float | None = None  # its receipt here
    ended_rx: float | None = None
    outcome: str = "timeout"
    events: int = 0
    error: str | None = None
    #: (status, event timestamp) of each progress event, in order
    steps: list[tuple[str, float]] = field(default_factory=list)


def orders(n: int) -> list[dict[str, str]]:
    """N valid create bodies on distinct PON ports where possible (2 OLTs x 32 ports)."""
    ports = [f"0/{slot}/{p}" for slot in (1, 2) for p in range(16)]
    out = []
    for i in range(n):
        olt = ("olt-1", "olt-2")[i % 2]
        out.append(
            {
                "customer_ref": f"bench-{i}",
                "plan": ("100M", "500M", "1G")[i % 3],
                "olt": olt,
                "pon_port": ports[(i // 2) % len(ports)],
                "ont_serial": uuid.uuid4().hex[:16].upper(),
            }
        )
    return out


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def post_and_follow(
    client: httpx.AsyncClient,
    run: Run,
    deadline: float,
    stop: threading.Event,
    on_accepted: Callable[[Run], None] | None = None,
) -> None:
    """POST ``run`` and follow its service over SSE until the run's completed/failed
    event (or the deadline); ``on_accepted`` is called right after the 202."""
    run.posted_at = time.time()
    try:
        resp = await client.post(run.path, json=run.body or None)
        run.accepted_at, run.status = time.time(), resp.status_code
        if resp.status_code != 202:
            run.outcome, run.error = "rejected", resp.text[:200]
            return
        accepted = resp.json()
        run.service_id, run.flow_run_id = accepted["id"], accepted.get("flow_run_id")
        if on_accepted is not None:
            on_accepted(run)
        left = max(1.0, deadline - time.time())
        # The deadline bounds the whole follow: heartbeats keep an idle stream's reads
        # short, and the SSE client never returns them.
        async with (
            asyncio.timeout(left),
            aconnect_sse(
                client, "GET", STREAM.format(run.service_id), timeout=httpx.Timeout(10, read=left)
            ) as source,
        ):
            async for sse in source.aiter_sse():
                if sse.data:
                    _event(run, sse.event, sse.json())
                if run.ended_rx is not None or stop.is_set():
                    return
    except TimeoutError:
        return  # outcome stays "timeout"
    except (httpx.HTTPError, OSError, ValueError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"[:200]


def _event(run: Run, kind: str, data: dict[str, Any]) -> None:
    if run.flow_run_id and data.get("flow_run_id") not in (None, run.flow_run_id):
        return  # the catch-up of the service's previous operation
    now = time.time()
    run.events += 1
    if kind.endswith(".progress"):
        run.steps.append((str(data["status"]), _ts(data["timestamp"])))
        if run.first_progress_rx is None:
            run.first_progress_rx = now
            run.first_progress_ts = run.steps[0][1]
    elif kind.endswith((".completed", ".failed")):
        run.ended_rx = now
        run.outcome = kind.rsplit(".", 1)[1]


async def provision_all(
    api_url: str, token: str, bodies: list[dict[str, str]], timeout: float, stop: threading.Event
) -> list[Run]:
    """POST every body at once and follow each over SSE until it ends (or the timeout)."""
    runs = [Run(body) for body in bodies]
    n = len(runs)
    deadline = time.time() + timeout
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    headers = {"Authorization": f"Bearer {token}"}
    # A slow POST is a figure, not a failure: wait up to 2 minutes for the 202.
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, limits=limits, timeout=120
    ) as client:
        await asyncio.gather(*(post_and_follow(client, r, deadline, stop) for r in runs))
    return runs


@dataclass
class RunProcesses(BackgroundSampler):
    """Samples the workers' descendants (one Python process per flow run) every 0.5 s."""

    thread_name = "run-sampler"

    worker_pids: list[int]
    min_available_gib: float
    on_low_memory: Callable[[], None]
    peak: int = 0
    rss_mb: dict[int, float] = field(default_factory=dict)
    cpu_s: dict[int, float] = field(default_factory=dict)
    low_memory: bool = False

    def _loop(self) -> None:
        workers = []
        for pid in self.worker_pids:
            try:
                workers.append(psutil.Process(pid))
            except psutil.Error:
                continue
        while not self._stop.wait(0.5):
            runs = []
            for worker in workers:
                try:
                    runs += [p for p in worker.children(recursive=True) if _is_run(p)]
                except psutil.Error:
                    continue
            self.peak = max(self.peak, len(runs))
            for p in runs:
                try:
                    # USS: a forked run shares its parent's pages; count what is its own.
                    rss = p.memory_full_info().uss / 2**20
                    t = p.cpu_times()
                except psutil.Error:
                    continue
                self.rss_mb[p.pid] = max(self.rss_mb.get(p.pid, 0.0), rss)
                self.cpu_s[p.pid] = t.user + t.system
            if psutil.virtual_memory().available / 2**30 < self.min_available_gib:
                self.low_memory = True
                self.on_low_memory()
                return


def _is_run(p: psutil.Process) -> bool:
    """A flow-run process: Prefect's stock worker starts ``python -m prefect.engine``;
    fiberflow's warm worker forks each run from its forkserver (core/worker.py)."""
    try:
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        if "prefect.engine" in p.cmdline():
            return True
        parent = p.parent()
        return parent is not None and "multiprocessing.forkserver" in " ".join(parent.cmdline())
    except psutil.Error:
        return False


def step_seconds(run: Run) -> dict[str, float]:
    """Seconds from each step's first progress event to the next step's (the last step
    to the run's end as received); repeated statuses (retries, waits) fold in."""
    firsts: list[tuple[str, float]] = []
    for status, ts in run.steps:
        if status not in {s for s, _ in firsts} and status not in ("retrying", "waiting"):
            firsts.append((status, ts))
    # With the API's announcement the first event is ``queued``: its row is the wait
    # for a worker to start the run (before 0.2.0 that wait was inside this first row).
    out = {"POST → first event": firsts[0][1] - run.posted_at} if firsts else {}
    for (status, ts), (_next, nts) in zip(firsts, firsts[1:], strict=False):
        out[status] = nts - ts
    return out
