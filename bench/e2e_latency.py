"""Hook → client latency while workflows run, through ``fiberflow up`` (a black box, as a
user runs it), with the time of each hop.

N services are provisioned (not measured), one SSE client per service connects, then
all N are suspended at once and, once every suspension ended, resumed at once. For
every event delivered live: latency = receipt here − the event's own ``timestamp`` (the
hook's clock). Each event's path is split into hops from the records it leaves:

- hook → row: ``event_log.created_at`` (the insert under the per-service lock) − timestamp
- row → XADD: the Redis stream entry's id (XADD's own millisecond clock) − created_at
- XADD → client: receipt − the stream entry's time (the relay's read, fan-out, socket)

Baseline in the same run: the project database on SQLite (the embedded default before
0.2.0) beside the embedded PostgreSQL of today's defaults.

    .venv/bin/python -m bench.e2e_latency [--n 20] [--latency 0.2] [--variants pg,sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from httpx_sse import aconnect_sse
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.lifecycle_load import STREAM, orders, provision_all
from bench.lifecycle_throughput import set_latency
from bench.report import DEFAULT_OUTPUT, Dist, Section, Table, load_average, num
from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import EventLog
from fiberflow.core.tokens import issue
from fiberflow.events.record import DEFAULT_PREFIX, stream_key
from fiberflow.lab.harness import running_stack, wait_healthy

log = logging.getLogger(__name__)
TENANT = "5d0f3c7e-2a41-4b8e-9c16-7e3a0b2d9f41"
HEADERS = [
    "project database",
    "events live",
    "hook → client p50 / p95 / p99 / max ms",
    "hook → row p50 / p99 ms",
    "row → XADD p50 / p99 ms",
    "XADD → client p50 / p99 ms",
    "API CPU %",
    "load avg",
]


@dataclass
class Delivery:
    """One event as one client received it (wall-clock seconds)."""

    event_id: int
    event_type: str
    timestamp: float  # the event's own (hook) time
    received: float
    row_at: float | None = None  # event_log.created_at
    xadd_at: float | None = None  # the stream entry's millisecond time


@dataclass
class Hops:
    total: Dist
    hook_row: Dist
    row_xadd: Dist
    xadd_client: Dist


def hops(deliveries: list[Delivery]) -> Hops:
    """Latency distributions in milliseconds; a hop is left out where a record is missing
    (a stream entry trimmed, or an event delivered from the database catch-up)."""
    ms = 1000.0
    return Hops(
        total=Dist.of((d.received - d.timestamp) * ms for d in deliveries),
        hook_row=Dist.of((d.row_at - d.timestamp) * ms for d in deliveries if d.row_at is not None),
        row_xadd=Dist.of(
            (d.xadd_at - d.row_at) * ms
            for d in deliveries
            if d.xadd_at is not None and d.row_at is not None
        ),
        xadd_client=Dist.of(
            (d.received - d.xadd_at) * ms for d in deliveries if d.xadd_at is not None
        ),
    )


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _utc_seconds(value: datetime) -> float:
    # event_log.created_at is stored naive UTC on SQLite, aware on PostgreSQL.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@dataclass
class Listener:
    """One SSE client on one service: every event newer than ``since`` it receives."""

    service_id: str
    since: float
    deliveries: list[Delivery] = field(default_factory=list)
    ended: dict[str, int] = field(default_factory=dict)  # operation -> terminal events seen
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        async with aconnect_sse(
            client, "GET", STREAM.format(self.service_id), timeout=httpx.Timeout(10, read=None)
        ) as source:
            self.ready.set()
            async for sse in source.aiter_sse():
                if stop.is_set():
                    return
                if not sse.data:  # heartbeat comment (httpx-sse hands it on as empty)
                    continue
                now = time.time()
                data: dict[str, Any] = sse.json()
                stamp = data.get("timestamp") or data.get("completed_at") or data.get("failed_at")
                ts = _ts(str(stamp))
                if ts < self.since:  # the catch-up of the provisioning: not live
                    continue
                self.deliveries.append(Delivery(int(sse.id), sse.event, ts, now))
                kind = sse.event.rsplit(".", 1)[-1]
                if kind in ("completed", "failed"):
                    op = sse.event.split(".")[1]
                    self.ended[op] = self.ended.get(op, 0) + 1


async def _operate(
    api_url: str, token: str, service_ids: list[str], timeout: float
) -> tuple[list[Listener], dict[str, int]]:
    """Connect one listener per service, suspend all at once, then resume all at once."""
    headers = {"Authorization": f"Bearer {token}"}
    n = len(service_ids)
    limits = httpx.Limits(max_connections=2 * n + 10, max_keepalive_connections=2 * n + 10)
    since = time.time()
    listeners = [Listener(sid, since) for sid in service_ids]
    statuses: dict[str, int] = {}
    stop = asyncio.Event()
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, limits=limits, timeout=120
    ) as client:
        tasks = [asyncio.create_task(li.run(client, stop)) for li in listeners]
        await asyncio.wait_for(asyncio.gather(*(li.ready.wait() for li in listeners)), 60)
        deadline = time.monotonic() + timeout
        for action, operation in (("suspend", "suspension"), ("resume", "resumption")):
            answers = await asyncio.gather(
                *(client.post(f"/api/v1/services/{sid}/{action}") for sid in service_ids)
            )
            for a in answers:
                tag = f"{action} {a.status_code}"
                statuses[tag] = statuses.get(tag, 0) + 1
            while time.monotonic() < deadline and not all(
                li.ended.get(operation) for li in listeners
            ):
                await asyncio.sleep(0.2)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return listeners, statuses


def _annotate(deliveries: list[Delivery], database_url: str, redis_url: str) -> None:
    """Fill each delivery's row and XADD times from event_log and the Redis stream."""
    ids = sorted({d.event_id for d in deliveries})
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(EventLog.id, EventLog.created_at).where(EventLog.id.in_(ids))
            ).all()
    finally:
        engine.dispose()
    row_at = {int(i): _utc_seconds(at) for i, at in rows}
    xadd_at: dict[int, float] = {}
    r = redis.Redis.from_url(redis_url)
    try:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = r.xrange(stream_key(DEFAULT_PREFIX))  # type: ignore[assignment]
        for entry_id, fields in entries:
            event_id = int(fields[b"id"])
            ms = int(entry_id.split(b"-")[0])
            # Two flushers may both add an event: the first entry is when it went out.
            xadd_at[event_id] = min(xadd_at.get(event_id, ms / 1000), ms / 1000)
    finally:
        r.close()
    for d in deliveries:
        d.row_at = row_at.get(d.event_id)
        d.xadd_at = xadd_at.get(d.event_id)


@dataclass
class Measured:
    deliveries: list[Delivery]
    statuses: dict[str, int]
    provisioned: int
    api_cpu_percent: float
    load: str


def measure(args: argparse.Namespace, tmp: Path, variant: str) -> Measured:
    env = {
        "FIBERFLOW_SSE_MAX_CONNECTIONS_PER_TENANT": str(args.n * 2 + 100),
        "FIBERFLOW_CREATE_RATE_PER_MINUTE": "0",
    }
    if variant == "sqlite":
        env["FIBERFLOW_DATABASE_URL"] = f"sqlite:///{tmp / 'fiberflow.db'}"
    if variant.startswith("pg-nice"):
        env["FIBERFLOW_WORKER_NICE"] = variant.removeprefix("pg-nice")
    if variant in ("pg-run-sends", "pg-api-sends"):
        env["FIBERFLOW_EVENT_SENDER"] = variant.removeprefix("pg-").removesuffix("-sends")
    with running_stack(tmp, **env) as stack:
        wait_healthy(stack.api_url, stack.proc, timeout=300)
        info = stack.info()
        key = (stack.data_dir / "dev-jwt-secret").read_text().strip()
        token = issue(key, tenant_id=TENANT, role="operator", sub="bench", ttl=timedelta(hours=2))
        set_latency(stack.data_dir, args.latency)
        runs = asyncio.run(
            provision_all(stack.api_url, token, orders(args.n), args.timeout, threading.Event())
        )
        ids = [r.service_id for r in runs if r.outcome == "completed" and r.service_id]
        api = psutil.Process(int(info["children"]["api"]))
        cpu0, t0 = sum(api.cpu_times()[:2]), time.monotonic()
        load = load_average()
        listeners, statuses = asyncio.run(_operate(stack.api_url, token, ids, args.timeout))
        cpu = (sum(api.cpu_times()[:2]) - cpu0) / max(time.monotonic() - t0, 1e-9) * 100
        deliveries = [d for li in listeners for d in li.deliveries]
        _annotate(deliveries, info["database_url"], info["redis_url"])
    return Measured(deliveries, statuses, len(ids), cpu, load)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.e2e_latency", description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny run: 2 services, PostgreSQL only")
    ap.add_argument("--n", type=int, default=20, help="services operated on at once")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument(
        "--variants",
        default="pg,sqlite",
        help="one stack each: pg = embedded defaults (PostgreSQL), pg-niceN = the same "
        "with FIBERFLOW_WORKER_NICE=N (pg-nice0: the worker at the API's CPU priority, as "
        "before 0.2.1), pg-run-sends / pg-api-sends = the same with FIBERFLOW_EVENT_SENDER=run "
        "(each flow run sends its own events to Redis, the default) / =api (the API sends "
        "them, woken by NOTIFY), sqlite = project database on "
        "SQLite (the default before 0.2.0)",
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="bound on each phase, s")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:
        ap.set_defaults(n=2, variants="pg", timeout=300.0)
        args = ap.parse_args(argv)
    return args


LABEL = {
    "pg": "embedded PostgreSQL (default)",
    "pg-nice0": "embedded PostgreSQL, worker not niced (FIBERFLOW_WORKER_NICE=0)",
    "pg-run-sends": "embedded PostgreSQL, each run sends its events (FIBERFLOW_EVENT_SENDER=run)",
    "pg-api-sends": "embedded PostgreSQL, the API sends the events (FIBERFLOW_EVENT_SENDER=api)",
    "sqlite": "SQLite (before 0.2.0)",
}


def _ms(d: Dist, *which: str) -> str:
    return " / ".join(num(getattr(d, w), 1) for w in which)


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    section = Section("Hook → client latency with workflows running")
    table = Table(HEADERS)
    data: dict[str, object] = {}
    for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
            m = measure(args, Path(tmp), variant)
        h = hops(m.deliveries)
        table.add(
            LABEL.get(variant, variant),
            str(h.total.n),
            _ms(h.total, "p50", "p95", "p99", "max"),
            _ms(h.hook_row, "p50", "p99"),
            _ms(h.row_xadd, "p50", "p99"),
            _ms(h.xadd_client, "p50", "p99"),
            num(m.api_cpu_percent, 1),
            m.load,
        )
        section.notes.append(
            f"{variant}: {m.provisioned} of {args.n} provisioned; answers "
            + ", ".join(f"{k}: {v}" for k, v in sorted(m.statuses.items()))
        )
        data[variant] = {
            "provisioned": m.provisioned,
            "statuses": m.statuses,
            "api_cpu_percent": m.api_cpu_percent,
            "hops": asdict(h),
            "deliveries": [asdict(d) for d in m.deliveries],
        }
    section.tables.append(
        (
            f"`fiberflow up`, lab devices at {args.latency:g} s per command: {args.n} services "
            f"provisioned, one SSE client each, then {args.n} suspensions at once and "
            f"{args.n} resumptions at once. Latency = receipt − the event's timestamp; hops "
            "from event_log.created_at and the Redis stream entry's time.",
            table,
        )
    )
    section.data = {"n": args.n, "latency": args.latency, "variants": data}
    section.save(args.output, args.json)
    return section


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
