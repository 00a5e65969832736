"""Hook overhead: a Prefect task's duration with and without fiberflow's event hooks
(tasks/hooks.py step_hooks: on_running publishes a progress event through the real
publisher — SQLite event_log row, then XADD), against a local Prefect server.

One flow run calls the same task N times bare and N times with hooks, interleaved
(which goes first alternates), so both see the same noise. The hooked calls rotate
through the provisioning steps, so every on_running is a step transition that the
coalescer never drops: each hooked call really stores and sends one event.

    .venv/bin/python -m bench.hook_overhead [--small] [--n 200] [--work 0,0.05]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from bench.report import DEFAULT_OUTPUT, Dist, Section, Table, load_average, num
from bench.servers import Servers, clean_env, wait_for
from fiberflow.stack.procs import free_port

log = logging.getLogger(__name__)


def start_prefect(servers: Servers) -> str:
    import httpx

    from fiberflow.stack.prefect_env import prefect_env

    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = clean_env(**prefect_env(servers.workdir, None))
    argv = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    child = servers.sup.start("prefect-server", argv, env=env)
    wait_for(
        "prefect server",
        lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
        120,
        child,
    )
    return url


def measure(n: int, work: float) -> list[tuple[float, float]]:
    """(bare seconds, hooked seconds) of ``n`` task call pairs inside one flow run."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.runtime import flow_run

    from fiberflow.core.catalogue import PROVISIONING
    from fiberflow.core.db.models import Operation
    from fiberflow.tasks.context import register
    from fiberflow.tasks.hooks import step_hooks

    @task(cache_policy=NO_CACHE, persist_result=False)
    def step(i: int) -> int:
        if work:
            time.sleep(work)
        return i

    bare = step.with_options(name="bare-step")
    hooked = [
        step.with_options(name=f"hooked-{s.status}", **step_hooks(s))
        for s in PROVISIONING.steps.values()
    ]

    @flow(name="hook-overhead", persist_result=False)
    def bench_flow() -> list[tuple[float, float]]:
        register(str(uuid.uuid4()), str(uuid.uuid4()), Operation.PROVISIONING, str(flow_run.id))
        for warm in (bare, *hooked):  # warm-up: first calls pay imports and connections
            warm(-1)
        out = []
        for i in range(n):
            first, second = (bare, hooked[i % 6]) if i % 2 == 0 else (hooked[i % 6], bare)
            t0 = time.perf_counter()
            first(i)
            t1 = time.perf_counter()
            second(i)
            t2 = time.perf_counter()
            out.append((t1 - t0, t2 - t1) if i % 2 == 0 else (t2 - t1, t1 - t0))
        return out

    return bench_flow()


def publish_alone(servers: Servers, redis_url: str, n: int, synchronous: str) -> Dist:
    """EventPublisher.publish outside Prefect, ms, on a fresh SQLite database with
    fiberflow's engine (WAL), ``PRAGMA synchronous`` as given (FULL is SQLite's default,
    NORMAL fiberflow's: core/db/engine.py sets it on every connection)."""
    from sqlalchemy import event

    from fiberflow.core.db.engine import make_engine
    from fiberflow.events.coalesce import Coalescer
    from fiberflow.events.publisher import EventPublisher, connect_sync
    from fiberflow.events.schema import progress

    engine = make_engine(servers.sqlite(f"alone-{synchronous}-{uuid.uuid4().hex[:6]}.db"))
    # After the engine's own connect hook (which sets NORMAL): this one wins.
    event.listen(engine, "connect", lambda c, _r: c.execute(f"PRAGMA synchronous={synchronous}"))
    publisher = EventPublisher(engine, connect_sync(redis_url), coalescer=Coalescer(0))
    ids = [str(uuid.uuid4()) for _ in range(3)]
    times = []
    try:
        for i in range(n + 5):
            ev = progress(
                "provisioning",
                service_id=ids[0],
                tenant_id=ids[1],
                operation_id=ids[2],
                step=i % 5 + 1,
                total_steps=6,
                status="testing",
                message="publish alone",
            )
            t0 = time.perf_counter()
            publisher.publish(ev)
            if i >= 5:  # the first calls open connections
                times.append(time.perf_counter() - t0)
    finally:
        publisher.close()
        engine.dispose()
    return Dist.of(times).scaled(1000)


def event_count(db_url: str) -> int:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from fiberflow.core.db.engine import make_engine
    from fiberflow.core.db.models import EventLog

    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            return int(s.scalar(select(func.count()).select_from(EventLog)) or 0)
    finally:
        engine.dispose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.hook_overhead", description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny run: 10 pairs, empty task")
    ap.add_argument("--n", type=int, default=200, help="task call pairs per work size")
    ap.add_argument("--work", default="0,0.05", help="seconds each task sleeps (comma list)")
    ap.add_argument("--prefect-api", help="use this Prefect server instead of starting one")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(n=10, work="0")
        args = ap.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> Section:
    from fiberflow.core.catalogue import PROVISIONING

    args = parse_args(argv)
    section = Section("Hook overhead")
    results: list[tuple[float, list[tuple[float, float]], int, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as tmp:
        servers = Servers(Path(tmp))
        try:
            redis_url, db_url = servers.redis(), servers.sqlite()
            api = args.prefect_api or start_prefect(servers)
            # Before anything reads settings: the hooks' publisher comes from these.
            os.environ.update(
                FIBERFLOW_DATABASE_URL=db_url,
                FIBERFLOW_REDIS_URL=redis_url,
                FIBERFLOW_DATA_DIR=tmp,
                PREFECT_API_URL=api,
                PREFECT_LOGGING_LEVEL="WARNING",
                PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
            )
            for work in (float(w) for w in args.work.split(",")):
                before = event_count(db_url)
                load = load_average()
                pairs = measure(args.n, work)
                stored = event_count(db_url) - before
                results.append((work, pairs, stored, f"{stored} events stored; load {load}"))
            alone = [
                (mode, publish_alone(servers, redis_url, args.n, mode))
                for mode in ("FULL", "NORMAL", "FULL", "NORMAL")
            ]
        finally:
            servers.stop_all()
    section.tables.append(
        (
            "Task duration seen by the flow (call to return), ms; "
            "ratio = hooked / bare of the medians:",
            _table(results),
        )
    )
    pub = Table(["publish() outside Prefect", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms"])
    for mode, d in alone:
        label = (
            "SQLite WAL, synchronous="
            + mode
            + (" (SQLite's default)" if mode == "FULL" else " (fiberflow's setting)")
        )
        pub.add(label, d.n, num(d.p50, 2), num(d.p95, 2), num(d.p99, 2), num(d.max, 1))
    section.tables.append(
        (
            "What one hook costs, taken apart: the publisher alone (SQLite "
            "insert + XADD + mark published), alternating settings:",
            pub,
        )
    )
    section.notes.append(
        "Each hooked call stores and sends one progress event (on_running); on_completion "
        "only logs. SQLite on the same disk as Prefect's own SQLite; Redis local."
    )
    section.data = {
        "results": [
            {
                "work": w,
                "pairs": len(pairs),
                # every hooked call (the pairs' and one warm-up per step) stores one event
                "hooked_calls": len(pairs) + len(PROVISIONING.steps),
                "stored": stored,
                "bare_ms": asdict(Dist.of(b for b, _ in pairs).scaled(1000)),
                "hooked_ms": asdict(Dist.of(h for _, h in pairs).scaled(1000)),
            }
            for w, pairs, stored, _notes in results
        ],
        "publish_alone_ms": [{"synchronous": m, **asdict(d)} for m, d in alone],
    }
    section.save(args.output, args.json)
    return section


def _table(results: list[tuple[float, list[tuple[float, float]], int, str]]) -> Table:
    t = Table(
        [
            "task body",
            "pairs",
            "bare p50",
            "bare p95",
            "hooked p50",
            "hooked p95",
            "added p50 ms",
            "ratio p50",
            "ratio p95",
            "notes",
        ]
    )
    for work, pairs, _stored, notes in results:
        bare = Dist.of(b for b, _ in pairs).scaled(1000)
        hooked = Dist.of(h for _, h in pairs).scaled(1000)
        body = "empty" if work == 0 else f"sleep {work * 1000:.0f} ms"
        t.add(
            body,
            len(pairs),
            num(bare.p50, 2),
            num(bare.p95, 2),
            num(hooked.p50, 2),
            num(hooked.p95, 2),
            num(hooked.p50 - bare.p50, 2),
            num(_ratio(hooked.p50, bare.p50), 2),
            num(_ratio(hooked.p95, bare.p95), 2),
            notes,
        )
    return t


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
