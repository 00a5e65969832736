"""The load benchmark's workload: lifecycle operations arriving at a steady rate, each
followed over SSE with its share of listeners; the baseline (each operation alone);
and the drive that runs it, lets the listeners catch up and reads every history."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.lifecycle_load import Run, post_and_follow
from bench.load_listeners import (
    DROP_S,
    LATE_S,
    MAX_CONNECTIONS_PER_LISTENER,
    MODES,
    Listener,
    listen,
)

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
HISTORY_PAGES = 100


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
