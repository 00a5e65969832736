"""One point of the SSE fan-out benchmark: a fresh relay process, C clients connected,
events published at E/s, then the figures (bench.sse_fanout runs the sweep)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.gcwatch import pauses
from bench.profile import Profiler
from bench.report import Dist, load_1m
from bench.servers import Servers, rss_mb
from bench.sse_pool import ClientPool, CpuSampler, default_procs
from bench.sse_publish import Fleet, Published, publish_events
from fiberflow.core.db.engine import make_engine

log = logging.getLogger(__name__)
CHANNEL = "bench:pubsub:events"
# name -> (app factory, label in the tables)
DESIGNS = {
    "fiberflow": ("fiberflow.api.app:create_app", "shared reader (fiberflow API)"),
    "pubsub": ("bench.baselines.pubsub_relay:create_app", "pub/sub per connection (replaced)"),
    # Experiment: the same API, plus gc.freeze() once the clients are connected.
    "fiberflow-gcfreeze": (
        "fiberflow.api.app:create_app",
        "fiberflow + gc.freeze() after connect (exp.)",
    ),
}


@dataclass
class Point:
    design: str
    clients: int
    connected: int
    connect_errors: dict[str, int]
    connect_s: float
    rate: float
    deliveries_per_s: float
    latency_ms: Dist
    relay_ms: Dist
    to_xadd_ms: Dist
    publish_ms: Dist
    counts: dict[str, int]
    relay_cpu_s: float
    window_s: float
    rss_idle_mb: float
    rss_connected_mb: float
    rss_end_mb: float
    client_cpu_pct: float
    load: float
    gc_pauses: list[float]  # full collections
    gen1_pauses: list[float]

    @property
    def kb_per_conn(self) -> float:
        if not self.connected:
            return float("nan")
        return (self.rss_connected_mb - self.rss_idle_mb) * 1024 / self.connected


def run_point(
    servers: Servers,
    engine_url: str,
    redis_url: str,
    design: str,
    clients: int,
    args: argparse.Namespace,
) -> Point:
    engine = make_engine(engine_url)
    fleet = Fleet.create(engine, servers.jwt_key, args.services, args.tenants)
    env = {
        "FIBERFLOW_DATABASE_URL": engine_url,
        "FIBERFLOW_REDIS_URL": redis_url,
        "FIBERFLOW_JWT_SECRET": servers.jwt_key,
        "FIBERFLOW_DATA_DIR": str(servers.workdir),
        "FIBERFLOW_SSE_MAX_CONNECTIONS_PER_TENANT": "1000000",
        "FIBERFLOW_RECONCILE_INTERVAL_SECONDS": "0",
        "FIBERFLOW_LOG_LEVEL": "WARNING",
        "BENCH_REDIS_URL": redis_url,
        "BENCH_CHANNEL": CHANNEL,
        "BENCH_JWT_KEY": servers.jwt_key,
    }
    gc_log = servers.workdir / f"gc-{design}-{clients}.log"
    env.update(BENCH_APP=DESIGNS[design][0], BENCH_GC_LOG=str(gc_log))
    freeze = design.endswith("-gcfreeze")
    if freeze:
        env["BENCH_GC_FREEZE_ON_USR1"] = "1"
    relays = []
    run = uuid.uuid4().hex[:12]
    try:
        for k in range(args.api_procs):
            name = f"relay-{design}-{clients}-{k}"
            relays.append(servers.uvicorn(name, "bench.gcwatch:create_app", env))
        pids = [child.pid for child, _ in relays]
        time.sleep(0.5)
        rss_idle = sum(rss_mb(p) for p in pids)
        t0 = time.monotonic()
        pool = ClientPool.start(
            servers.workdir,
            [url for _, url in relays],
            fleet.connections(clients),
            run,
            args.client_procs or default_procs(clients),
            args.connect_timeout,
        )
        connect_s = time.monotonic() - t0
        if freeze:
            for pid in pids:
                os.kill(pid, signal.SIGUSR1)  # experiment: gc.freeze() once connected
        time.sleep(1.0)  # let the connections settle before measuring idle memory
        rss_connected = sum(rss_mb(p) for p in pids)
        load = load_1m()
        profiler = None
        if args.profile:
            profiler = Profiler(pids[0], args.profile / f"{design}-{clients}.txt")
            profiler.start()
        sampler = CpuSampler(pids)
        sampler.start()
        window_start = time.time()
        channel = CHANNEL if design == "pubsub" else None
        published = publish_events(engine, redis_url, fleet, run, args.events, args.rate, channel)
        counts, latencies, ids = pool.finish(published.expect, args.drain)
        wall, cpu = sampler.stop()
        if profiler is not None:
            profiler.stop()
        window_end = time.time()
        gc_pauses = pauses(str(gc_log), window_start, window_end)
        gen1_pauses = pauses(str(gc_log), window_start, window_end, generation=1)
        to_xadd = published.to_xadd
        relay = [lat - to_xadd.get(i, 0.0) for lat, i in zip(latencies, ids, strict=True)]
        if args.keep:
            _dump(args.keep / f"{design}-{clients}.json", latencies, ids, published)
        rss_end = sum(rss_mb(p) for p in pids)
    finally:
        for child, _ in relays:
            servers.stop(child)
        engine.dispose()
    return Point(
        design=design,
        clients=clients,
        connected=pool.ready,
        connect_errors=pool.errors,
        connect_s=connect_s,
        rate=published.rate,
        deliveries_per_s=counts.get("received", 0) / max(published.seconds, 1e-3),
        latency_ms=Dist.of(latencies).scaled(1000),
        relay_ms=Dist.of(relay).scaled(1000),
        to_xadd_ms=Dist.of(published.to_xadd.values()).scaled(1000),
        publish_ms=Dist.of(published.publish_ms),
        counts=counts,
        relay_cpu_s=sum(cpu),
        window_s=wall,
        rss_idle_mb=rss_idle,
        rss_connected_mb=rss_connected,
        rss_end_mb=rss_end,
        client_cpu_pct=pool.client_cpu_pct,
        load=load,
        gc_pauses=gc_pauses,
        gen1_pauses=gen1_pauses,
    )


def _dump(path: Path, latencies: Sequence[float], ids: Sequence[int], published: Published) -> None:
    """Raw figures for a closer look: per delivery (event id, latency s); per event the
    seconds from the publisher's clock reading to its XADD."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"deliveries": list(zip(ids, latencies, strict=True)), "to_xadd": published.to_xadd}
        )
    )
