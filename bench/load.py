"""Load (issue #8): W lifecycle workflows arriving at a steady rate over M minutes through
``fiberflow up`` (a subprocess, as a user runs it), with C SSE clients listening; the
lab's SSH devices answer every command after a fixed latency (default 0.2 s).

1. baseline, same stack: one provisioning alone, then its suspension, resumption and
   termination, each alone;
2. the load: arrival *i* at ``i * M*60/W`` s, mostly provisionings, plus suspensions,
   resumptions and terminations of services provisioned earlier in the run (only of a
   service whose last operation completed and that is in the right status, so none
   answers 409 by design; when none is eligible, a provisioning now and that operation
   at a later provisioning's turn). Each is followed over
   SSE to its own completed/failed event. Every arrival brings ~C/W SSE listeners to its
   service: most connect at once, some late (catch-up), some drop their connection
   mid-run and reconnect with ``Last-Event-ID``. Each records every event id it gets.
3. the check: every service's full history (``GET /api/v1/services/{id}/events``, the
   same ids as SSE) against every listener: each must get every id from its start
   point on exactly once, in order; every workflow must have its completed event and
   its service the right status.

    .venv/bin/python -m bench.load [--small] [--workflows 100] [--minutes 5]
        [--sse-clients 500] [--latency 0.2] [--output FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.lifecycle_load import STREAM, Run, RunProcesses, orders, post_and_follow
from bench.lifecycle_throughput import MIN_AVAILABLE_GIB, TENANT, set_latency
from bench.report import DEFAULT_OUTPUT, Dist, Section, Table, load_average, num
from bench.sampling import BackgroundSampler
from fiberflow.core.tokens import issue
from tests.fixtures.stack import running_stack, wait_healthy

log = logging.getLogger(__name__)

OPERATIONS = ("provisioning", "suspension", "resumption", "termination")
PATH = {"suspension": "suspend", "resumption": "resume", "termination": "terminate"}
#: status a completed operation leaves the service in
RESULT = {
    "provisioning": "active",
    "suspension": "suspended",
    "resumption": "active",
    "termination": "terminated",
}
#: the statuses an operation may start from (DESIGN's status machine)
FROM = {
    "suspension": ("active",),
    "resumption": ("suspended",),
    "termination": ("active", "suspended"),
}
#: the arrival pattern, repeated: 7 provisionings, 1 suspension, 1 resumption, 1 termination
PATTERN = ("P", "P", "S", "P", "P", "R", "P", "T", "P", "P")
KIND = {"P": "provisioning", "S": "suspension", "R": "resumption", "T": "termination"}
#: listener modes by index mod 20: 12 connect at once, 5 late, 3 reconnect mid-run
MODES = tuple(
    "reconnect" if j in (1, 8, 15) else "late" if j in (3, 6, 10, 13, 17) else "now"
    for j in range(20)
)
LATE_S = (1.0, 15.0)  # a late listener connects this long after its arrival's 202
DROP_S = (1.0, 10.0)  # a reconnecting one drops its first connection this long after
#: an event stamped this long after a connection was ready must reach it (see check)
CONNECT_TOLERANCE_S = 2.0
MAX_CONNECTIONS_PER_LISTENER = 6
HISTORY_PAGES = 100


# -- listeners --------------------------------------------------------------------------


@dataclass
class Connection:
    sent: float  # time.time() when the request went
    last_event_id: int | None
    ready: float | None = None  # headers received
    ended: str | None = None  # why it ended early ("closed", an error), None = we closed it


@dataclass
class Listener:
    """One SSE client of one service; ``ids`` in the order received (duplicates kept)."""

    index: int
    service_id: str
    mode: str
    connect_at: float
    disconnect_at: float | None = None
    ids: list[int] = field(default_factory=list)
    #: receipt - event timestamp, for events stamped after their connection was ready
    live_latency: list[float] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _event_time(data: dict[str, Any]) -> float | None:
    for key in ("timestamp", "completed_at", "failed_at"):
        if isinstance(data.get(key), str):
            return datetime.fromisoformat(data[key].replace("Z", "+00:00")).timestamp()
    return None


async def _messages(resp: httpx.Response) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """(id, data) of each SSE message; comments (heartbeats) skipped."""
    event_id: int | None = None
    data: str | None = None
    async for line in resp.aiter_lines():
        if line == "":
            if event_id is not None and data is not None:
                yield event_id, json.loads(data)
            event_id = data = None
        elif line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("data:"):
            data = line[5:].strip()


async def _read(client: httpx.AsyncClient, lst: Listener, conn: Connection) -> None:
    headers = {} if conn.last_event_id is None else {"Last-Event-ID": str(conn.last_event_id)}
    timeout = httpx.Timeout(10, read=None)  # heartbeats keep it alive; we cancel at the end
    async with client.stream(
        "GET", STREAM.format(lst.service_id), headers=headers, timeout=timeout
    ) as resp:
        if resp.status_code != 200:
            body = (await resp.aread()).decode(errors="replace")[:200]
            raise RuntimeError(f"HTTP {resp.status_code}: {body}")
        conn.ready = time.time()
        async for event_id, data in _messages(resp):
            now = time.time()
            lst.ids.append(event_id)
            stamped = _event_time(data)
            if stamped is not None and stamped >= conn.ready:
                lst.live_latency.append(now - stamped)
    conn.ended = "closed by the server"


async def _planned_drop(lst: Listener) -> None:
    """Returns once the planned disconnect time has passed and an event has arrived
    (so the reconnect has a Last-Event-ID to send)."""
    assert lst.disconnect_at is not None
    while time.time() < lst.disconnect_at or not lst.ids:
        await asyncio.sleep(0.2)


async def listen(client: httpx.AsyncClient, lst: Listener, rng: random.Random) -> None:
    """Connect at ``connect_at``; reconnect (``Last-Event-ID``, as a browser) after a
    planned drop or when the server ends the stream; runs until cancelled."""
    await asyncio.sleep(max(0.0, lst.connect_at - time.time()))
    while len(lst.connections) < MAX_CONNECTIONS_PER_LISTENER:
        conn = Connection(time.time(), lst.ids[-1] if lst.ids else None)
        lst.connections.append(conn)
        read = asyncio.create_task(_read(client, lst, conn))
        waits: set[asyncio.Task[None]] = {read}
        if lst.disconnect_at is not None and len(lst.connections) == 1:
            waits.add(asyncio.create_task(_planned_drop(lst)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in waits:
                t.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if read.done() and not read.cancelled() and read.exception() is not None:
            exc = read.exception()
            conn.ended = f"{type(exc).__name__}: {exc}"[:200]
            lst.errors.append(conn.ended)
        await asyncio.sleep(rng.uniform(0.2, 2.0) if conn.ended is None else 1.0)


# -- the workload -----------------------------------------------------------------------


@dataclass
class Load:
    """The arrivals, their runs and listeners, and what the client knows of each service."""

    api_url: str
    token: str
    workflows: int
    window_s: float
    sse_clients: int
    deadline: float
    stop: threading.Event
    bodies: list[dict[str, str]]
    rng: random.Random = field(default_factory=lambda: random.Random(8))
    runs: list[Run] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)  # as the last completed run left it
    busy: set[str] = field(default_factory=set)
    owed: list[str] = field(default_factory=list)  # operations that found no service yet
    in_flight: int = 0
    peak_in_flight: int = 0
    started: float = 0.0
    listen_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def pick(self, operation: str) -> str | None:
        idle = sorted(
            s for s, st in self.status.items() if st in FROM[operation] and s not in self.busy
        )
        return self.rng.choice(idle) if idle else None

    def new_run(self, i: int) -> Run:
        """Arrival i's operation from PATTERN. One with no eligible service yet becomes a
        provisioning and is owed: a later provisioning slot takes it when one is
        eligible then (so the mix stays near PATTERN's)."""
        operation, target = KIND[PATTERN[i % len(PATTERN)]], None
        if operation != "provisioning":
            target = self.pick(operation)
            if target is None:
                self.owed.append(operation)
        else:
            for owed in self.owed:
                target = self.pick(owed)
                if target is not None:
                    operation = owed
                    self.owed.remove(owed)
                    break
        if target is None:
            return Run(self.bodies.pop(0))
        self.busy.add(target)
        run = Run({}, operation, f"/api/v1/services/{target}/{PATH[operation]}")
        run.service_id = target
        return run

    def listeners_for(self, i: int) -> int:
        """Arrival i's share of the SSE clients (spread evenly over the arrivals)."""
        c, w = self.sse_clients, self.workflows
        return (i + 1) * c // w - i * c // w

    def add_listeners(self, client: httpx.AsyncClient, run: Run, count: int) -> None:
        assert run.service_id is not None
        for _ in range(count):
            j = len(self.listeners)
            mode = MODES[j % len(MODES)]
            now = time.time()
            lst = Listener(j, run.service_id, mode, now)
            if mode == "late":
                lst.connect_at = now + self.rng.uniform(*LATE_S)
            elif mode == "reconnect":
                lst.disconnect_at = now + self.rng.uniform(*DROP_S)
            self.listeners.append(lst)
            rng = random.Random(j)
            self.listen_tasks.append(asyncio.create_task(listen(client, lst, rng)))

    async def workflow(
        self, follow: httpx.AsyncClient, listen_client: httpx.AsyncClient, run: Run, i: int
    ) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            count = self.listeners_for(i)

            def accepted(r: Run) -> None:
                self.add_listeners(listen_client, r, count)

            await post_and_follow(follow, run, self.deadline, self.stop, accepted)
        finally:
            self.in_flight -= 1
        if run.service_id is None:
            return
        if run.outcome == "completed":
            self.status[run.service_id] = RESULT[run.operation]
        elif run.outcome == "failed":
            self.status[run.service_id] = "failed"
        self.busy.discard(run.service_id)

    async def run(self, follow: httpx.AsyncClient, listen_client: httpx.AsyncClient) -> None:
        """The arrivals at a steady rate; returns once every workflow ended (or the
        deadline / a stop)."""
        interval = self.window_s / self.workflows
        self.started = time.time()
        tasks = []
        for i in range(self.workflows):
            await asyncio.sleep(max(0.0, self.started + i * interval - time.time()))
            if self.stop.is_set() or time.time() > self.deadline:
                break
            run = self.new_run(i)
            self.runs.append(run)
            tasks.append(asyncio.create_task(self.workflow(follow, listen_client, run, i)))
        await asyncio.gather(*tasks)


# -- history and the check --------------------------------------------------------------


async def history(client: httpx.AsyncClient, service_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    for _ in range(HISTORY_PAGES):
        params: dict[str, int] = {} if after is None else {"after": after}
        resp = await client.get(f"/api/v1/services/{service_id}/events", params=params)
        resp.raise_for_status()
        page = resp.json()
        if not page:
            break
        out += page
        after = page[-1]["id"]
    return out


@dataclass
class Verdict:
    """One listener against its service's history."""

    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unknown: int = 0  # ids not in the service's history
    #: a connection without Last-Event-ID started mid-operation (lost its start)
    bad_start: bool = False


def check_listener(lst: Listener, events: list[dict[str, Any]]) -> Verdict:
    """Every id from the listener's start point on, exactly once and in order.

    The start point is its first id, which must be the first event of its operation
    (a connection without ``Last-Event-ID`` gets the service's latest operation from
    its start). Events stamped more than CONNECT_TOLERANCE_S after its first connection
    was ready are required as well (so a catch-up that began at a later operation than
    the one running at connect time counts what it skipped as lost)."""
    v = Verdict(delivered=len(lst.ids), duplicates=len(lst.ids) - len(set(lst.ids)))
    v.out_of_order = sum(b < a for a, b in zip(lst.ids, lst.ids[1:], strict=False))
    known = {e["id"] for e in events}
    v.unknown = len(set(lst.ids) - known)
    ready = next((c.ready for c in lst.connections if c.ready is not None), None)
    required: set[int] = set()
    if lst.ids:
        start = lst.ids[0]
        op = next((e["data"].get("flow_run_id") for e in events if e["id"] == start), None)
        first_of_op = min(
            (e["id"] for e in events if e["data"].get("flow_run_id") == op), default=start
        )
        v.bad_start = first_of_op != start
        required |= {e["id"] for e in events if e["id"] >= first_of_op}
    if ready is not None:
        late = ready + CONNECT_TOLERANCE_S
        required |= {e["id"] for e in events if (_event_time(e["data"]) or 0) > late}
    v.lost = len(required - set(lst.ids))
    return v


# -- sampling -------------------------------------------------------------------------


@dataclass
class Sampler(BackgroundSampler):
    """Every second: the API process (and children) CPU and RSS, the load average, the
    memory available, and flows in flight as the Prefect API sees them (RUNNING)."""

    thread_name = "load-sampler"

    api_pid: int
    prefect_api: str
    cpu_pct: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    load_1m: list[float] = field(default_factory=list)
    available_gib: list[float] = field(default_factory=list)
    prefect_running: list[int] = field(default_factory=list)
    api_cpu_s: float = 0.0
    wall_s: float = 0.0

    @staticmethod
    def _procs(pid: int) -> list[psutil.Process]:
        try:
            p = psutil.Process(pid)
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return []

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _loop(self) -> None:
        body = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}
        t0 = last_t = time.monotonic()
        cpu0 = last_cpu = self._cpu(self._procs(self.api_pid))
        with httpx.Client(base_url=self.prefect_api, timeout=5) as prefect:
            while not self._stop.wait(1.0):
                procs = self._procs(self.api_pid)
                cpu, now = self._cpu(procs), time.monotonic()
                self.cpu_pct.append(100 * (cpu - last_cpu) / max(1e-6, now - last_t))
                self.api_cpu_s, self.wall_s = cpu - cpu0, now - t0
                last_cpu, last_t = cpu, now
                rss = 0.0
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss / 2**20
                self.rss_mb.append(rss)
                self.load_1m.append(os.getloadavg()[0])
                self.available_gib.append(psutil.virtual_memory().available / 2**30)
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    resp = prefect.post("/flow_runs/count", json=body)
                    self.prefect_running.append(int(resp.json()))


# -- the run ----------------------------------------------------------------------------


@dataclass
class Measured:
    baseline: list[Run]
    load: Load
    verdicts: dict[int, Verdict]
    histories: dict[str, list[dict[str, Any]]]
    final_status: dict[str, str]
    sampler: Sampler
    procs: RunProcesses
    startup: float
    devices: int
    wall: float
    load_avg: str


def _clients(api_url: str, token: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    # A slow answer is a figure, not a failure: wait up to 2 minutes.
    return httpx.AsyncClient(
        base_url=api_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=httpx.Timeout(120, pool=120),
    )


async def baseline(
    api_url: str, token: str, body: dict[str, str], stop: threading.Event
) -> list[Run]:
    """One provisioning alone, then its suspension, resumption and termination."""
    runs = [Run(body)]
    async with _clients(api_url, token, 8) as client:
        await post_and_follow(client, runs[0], time.time() + 300, stop)
        sid = runs[0].service_id
        if runs[0].outcome != "completed" or sid is None:
            return runs
        for operation in OPERATIONS[1:]:
            run = Run({}, operation, f"/api/v1/services/{sid}/{PATH[operation]}")
            runs.append(run)
            await post_and_follow(client, run, time.time() + 300, stop)
            if run.outcome != "completed":
                break
    return runs


async def drive(
    load: Load, drain_s: float
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """The load, then the drain (listeners get up to ``drain_s`` to reach each service's
    last event), then every service's history and final status."""
    n = load.workflows + 10
    async with (
        _clients(load.api_url, load.token, n) as follow,
        _clients(load.api_url, load.token, load.sse_clients + 10) as listen_client,
    ):
        try:
            await load.run(follow, listen_client)
            if load.stop.is_set():  # the stack was stopped (low memory): nothing to read
                return {}, {}
            services = sorted({r.service_id for r in load.runs if r.service_id})
            histories = {s: await history(follow, s) for s in services}
            last = {s: max((e["id"] for e in h), default=0) for s, h in histories.items()}
            end = time.monotonic() + drain_s
            while time.monotonic() < end and not load.stop.is_set():
                waiting = [
                    lst
                    for lst in load.listeners
                    if len(lst.connections) < MAX_CONNECTIONS_PER_LISTENER
                    and (
                        not lst.ids
                        or lst.ids[-1] < last.get(lst.service_id, 0)
                        or (lst.mode == "reconnect" and len(lst.connections) < 2)
                    )
                ]
                if not waiting:
                    break
                await asyncio.sleep(0.2)
            # Histories again: an event published after the first read (none expected).
            histories = {s: await history(follow, s) for s in services}
            final = {}
            for s in services:
                resp = await follow.get(f"/api/v1/services/{s}")
                final[s] = resp.json().get("status", f"HTTP {resp.status_code}")
        finally:
            for t in load.listen_tasks:
                t.cancel()
            await asyncio.gather(*load.listen_tasks, return_exceptions=True)
    return histories, final


def measure(args: argparse.Namespace, tmp: Path) -> Measured:
    env = {
        "FIBERFLOW_SSE_MAX_CONNECTIONS_PER_TENANT": str(args.sse_clients + args.workflows + 100),
        "FIBERFLOW_CREATE_RATE_PER_MINUTE": "0",
    }
    with running_stack(tmp, **env) as stack:
        t0 = time.monotonic()
        wait_healthy(stack.api_url, stack.proc, timeout=300)
        startup = time.monotonic() - t0
        info = stack.info()
        key = (stack.data_dir / "dev-jwt-secret").read_text().strip()
        token = issue(key, tenant_id=TENANT, role="operator", sub="bench", ttl=timedelta(hours=3))
        devices = set_latency(stack.data_dir, args.latency)
        stop = threading.Event()

        def low_memory() -> None:
            stop.set()
            stack.proc.send_signal(signal.SIGTERM)

        bodies = orders(args.workflows + 1)
        base = asyncio.run(baseline(stack.api_url, token, bodies.pop(0), stop))
        window = args.minutes * 60
        load = Load(
            stack.api_url,
            token,
            args.workflows,
            window,
            args.sse_clients,
            time.time() + window + args.timeout,
            stop,
            bodies,
        )
        procs = RunProcesses([info["children"]["worker"]], MIN_AVAILABLE_GIB, low_memory)
        sampler = Sampler(info["children"]["api"], info["prefect_api_url"])
        load_avg = load_average()
        procs.start()
        sampler.start()
        t1 = time.time()
        try:
            histories, final = asyncio.run(drive(load, args.drain))
        finally:
            wall = max((r.ended_rx or 0 for r in load.runs), default=time.time()) - t1
            sampler.stop()
            procs.stop()
    verdicts = {
        lst.index: check_listener(lst, histories.get(lst.service_id, [])) for lst in load.listeners
    }
    return Measured(
        base, load, verdicts, histories, final, sampler, procs, startup, devices, wall, load_avg
    )


# -- the report -------------------------------------------------------------------------


def _expected_status(load: Load) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in load.runs:  # in arrival order: the last run of a service decides
        if r.service_id and r.status == 202:
            out[r.service_id] = RESULT[r.operation] if r.outcome == "completed" else r.outcome
    return out


def workflow_errors(m: Measured) -> list[str]:
    """Everything that went wrong with a workflow (a 409 is listed as well)."""
    errors = []
    for r in m.load.runs:
        what = f"{r.operation} {r.service_id or r.body.get('ont_serial')}"
        if r.status != 202:
            errors.append(f"{what}: POST answered {r.status}: {r.error}")
        elif r.outcome != "completed":
            errors.append(f"{what}: {r.outcome} ({r.error or 'no error text'})")
        else:
            done = f"service.{r.operation}.completed"
            h = m.histories.get(r.service_id or "", [])
            if not any(
                e["event_type"] == done and e["data"].get("flow_run_id") == r.flow_run_id for e in h
            ):
                errors.append(f"{what}: no {done} event with its flow_run_id in the history")
    for sid, want in _expected_status(m.load).items():
        got = m.final_status.get(sid)
        if got != want:
            errors.append(f"service {sid}: status {got}, expected {want}")
    return errors


def op_row(label: str, runs: list[Run]) -> list[str]:
    ok = [r for r in runs if r.outcome == "completed"]
    failed = sum(r.outcome == "failed" for r in runs)
    post = Dist.of(r.accepted_at - r.posted_at for r in runs if r.status == 202)
    first = Dist.of(r.first_progress_ts - r.posted_at for r in runs if r.first_progress_ts)
    done = Dist.of(r.ended_rx - r.posted_at for r in ok if r.ended_rx)
    return [
        label,
        f"{len(runs)} / {len(ok)} / {failed} / {len(runs) - len(ok) - failed}",
        f"{num(post.p50, 2)} / {num(post.p95, 2)}",
        f"{num(first.p50, 2)} / {num(first.p95, 2)}",
        f"{num(done.p50, 1)} / {num(done.p95, 1)} / {num(done.max, 1)}",
    ]


def sse_counts(m: Measured) -> dict[str, Any]:
    vs = list(m.verdicts.values())
    lst = m.load.listeners
    latency = Dist.of(x for listener in lst for x in listener.live_latency)
    return {
        "clients": len(lst),
        "connected": sum(any(c.ready for c in listener.connections) for listener in lst),
        "connections": sum(len(listener.connections) for listener in lst),
        "planned_reconnects": sum(listener.mode == "reconnect" for listener in lst),
        "ended_by_server": sum(
            c.ended is not None for listener in lst for c in listener.connections
        ),
        "connect_errors": sum(len(listener.errors) for listener in lst),
        "late": sum(listener.mode == "late" for listener in lst),
        "delivered": sum(v.delivered for v in vs),
        "lost": sum(v.lost for v in vs),
        "duplicates": sum(v.duplicates for v in vs),
        "out_of_order": sum(v.out_of_order for v in vs),
        "unknown": sum(v.unknown for v in vs),
        "bad_start": sum(v.bad_start for v in vs),
        "latency_ms": asdict(latency.scaled(1000)),
    }


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    section = Section("Load")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        m = measure(args, Path(tmp))
    load, s = m.load, m.sampler
    errors = workflow_errors(m)
    refused = [r for r in load.runs if r.status == 409]
    sse = sse_counts(m)
    listener_errors = sorted({e for lst in load.listeners for e in lst.errors})

    ops = Table(
        [
            "workflows",
            "n / completed / failed / other",
            "POST → 202 p50 / p95 s",
            "POST → 1st progress p50 / p95 s",
            "completion p50 / p95 / max s",
        ]
    )
    for r in m.baseline:
        ops.rows.append(op_row(f"{r.operation} alone (baseline)", [r]))
    for op in OPERATIONS:
        runs = [r for r in load.runs if r.operation == op]
        if runs:
            ops.rows.append(op_row(f"{op} under load", runs))
    ops.rows.append(op_row("all under load", load.runs))

    cpu = Dist.of(s.cpu_pct)
    lat = sse["latency_ms"]
    figures = Table(["figure", "value"])
    completed = sum(r.outcome == "completed" for r in load.runs)
    failed = sum(r.outcome == "failed" for r in load.runs)
    figures.add("wall time (first POST → last workflow ended)", f"{num(m.wall, 1)} s")
    figures.add(
        "workflows arrived / completed / failed / errors / 409",
        f"{len(load.runs)} / {completed} / {failed} / {len(errors)} / {len(refused)}",
    )
    figures.add(
        "peak in flight: accepted not ended (client) / Prefect RUNNING / run processes",
        f"{load.peak_in_flight} / {max(s.prefect_running, default=0)} / {m.procs.peak}",
    )
    figures.add(
        "SSE clients / connected / connections (planned reconnects, late joiners)",
        f"{sse['clients']} / {sse['connected']} / {sse['connections']} "
        f"({sse['planned_reconnects']}, {sse['late']})",
    )
    figures.add(
        "SSE streams ended by the server or an error / connect errors",
        f"{sse['ended_by_server']} / {sse['connect_errors']}",
    )
    figures.add(
        "SSE events delivered / lost / duplicates / out of order / unknown ids",
        f"{sse['delivered']:,} / {sse['lost']} / {sse['duplicates']} / "
        f"{sse['out_of_order']} / {sse['unknown']}",
    )
    figures.add(
        "SSE delivery latency, live events (receipt − event timestamp) p50 / p99 / max",
        f"{num(lat['p50'], 0)} / {num(lat['p99'], 0)} / {num(lat['max'], 0)} ms (n={lat['n']:,})",
    )
    figures.add(
        "API process CPU: average / p95 of 1 s samples / max",
        f"{num(100 * s.api_cpu_s / max(s.wall_s, 1e-6), 0)} / {num(cpu.p95, 0)} / "
        f"{num(cpu.max, 0)} %",
    )
    figures.add("API process RSS max", f"{num(max(s.rss_mb, default=math.nan), 0)} MB")
    figures.add(
        "load average (1 min) max / memory available min",
        f"{num(max(s.load_1m, default=math.nan), 2)} / "
        f"{num(min(s.available_gib, default=math.nan), 1)} GiB",
    )
    section.tables.append(
        (
            f"`fiberflow up` on embedded defaults (SQLite, local Prefect server, one process "
            f"worker), {m.devices} lab SSH devices at {args.latency:g} s per command; stack "
            f"ready in {m.startup:.0f} s. {args.workflows} workflows arriving one every "
            f"{args.minutes * 60 / args.workflows:.1f} s (7 in 10 provisionings; suspensions, "
            f"resumptions, terminations of services provisioned earlier), "
            f"{args.sse_clients} SSE clients; load average at the start of the load "
            f"{m.load_avg}. Baseline: the same operations, each alone, in the same stack:",
            ops,
        )
    )
    section.tables.append(("The run:", figures))
    if errors:
        section.notes.append("errors: " + "; ".join(errors)[:1500])
    if listener_errors:
        section.notes.append("SSE connection errors: " + "; ".join(listener_errors)[:800])
    if sse["bad_start"]:
        section.notes.append(f"{sse['bad_start']} listeners started mid-operation")
    if m.procs.low_memory:
        section.notes.append(f"stopped early: available memory fell below {MIN_AVAILABLE_GIB} GiB")
    section.data = {
        "baseline": [asdict(r) for r in m.baseline],
        "runs": [asdict(r) for r in load.runs],
        "errors": errors,
        "refused_409": len(refused),
        "sse": sse,
        "listener_errors": listener_errors,
        "services": len(m.histories),
        "final_status": m.final_status,
        "history_events": sum(len(h) for h in m.histories.values()),
        "peak_in_flight": load.peak_in_flight,
        "peak_prefect_running": max(s.prefect_running, default=0),
        "peak_run_processes": m.procs.peak,
        "api_cpu_pct": asdict(cpu),
        "api_rss_mb_max": max(s.rss_mb, default=None),
        "load_1m_max": max(s.load_1m, default=None),
        "available_gib_min": min(s.available_gib, default=None),
        "wall_s": m.wall,
        "startup_s": m.startup,
        "low_memory": m.procs.low_memory,
    }
    section.save(args.output, args.json)
    return section


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny run: 5 workflows over 30 s")
    ap.add_argument("--workflows", type=int, default=100, help="workflows arriving")
    ap.add_argument("--minutes", type=float, default=5.0, help="arrival window, minutes")
    ap.add_argument("--sse-clients", type=int, default=500, help="SSE listeners in all")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument(
        "--timeout", type=float, default=900.0, help="bound after the window for runs to end, s"
    )
    ap.add_argument("--drain", type=float, default=30.0, help="bound for listeners to catch up, s")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(workflows=5, minutes=0.5, sse_clients=20, latency=0.0, timeout=300.0)
        args = ap.parse_args(argv)
    if args.workflows < 1 or args.minutes <= 0 or args.sse_clients < 0:
        ap.error("--workflows must be >= 1, --minutes > 0, --sse-clients >= 0")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
