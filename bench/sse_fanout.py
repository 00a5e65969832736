"""SSE fan-out: C concurrent clients over S services and T tenants while events are
published at E/s through EventPublisher.publish (database, then Redis).

For each C, two relays run one after the other, each a fresh uvicorn process:
fiberflow's API (one shared Redis reader per process) and the design it replaced
(bench/baselines/pubsub_relay.py: a pub/sub subscription per connection). Then the
floor: raw XADD to one redis-py reader. Figures: publish-timestamp -> client-receipt
latency, loss, duplicates, relay CPU and RSS, memory per idle connection.

    .venv/bin/python -m bench.sse_fanout [--small] [--clients 100,1000,5000] [--rate 100]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.profile import summarize
from bench.report import DEFAULT_OUTPUT, Dist, Section, Table, num
from bench.servers import Servers
from bench.sse_point import DESIGNS, Point, run_point
from bench.sse_publish import floor


def table(points: list[Point]) -> Table:
    t = Table(
        [
            "relay",
            "clients (connected in)",
            "events/s",
            "deliveries/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "lost",
            "dup",
            "relay CPU %",
            "CPU µs/delivery",
            "full GCs (max pause ms)",
            "gen-1 GCs (max ms)",
            "RSS MB idle → conn → end",
            "KB / idle conn",
            "client proc CPU % (max)",
            "load 1m",
        ]
    )
    for p in points:
        lat, received = p.latency_ms, p.counts.get("received", 0)
        conn = f"{p.clients:,} ({p.connected:,} in {p.connect_s:.0f} s)"
        if p.connect_errors:
            conn += " " + ", ".join(f"{k}: {v}" for k, v in p.connect_errors.items())
        t.add(
            DESIGNS[p.design][1],
            conn,
            num(p.rate),
            num(p.deliveries_per_s, 0),
            num(lat.p50, 2),
            num(lat.p95, 2),
            num(lat.p99, 2),
            num(lat.max, 1),
            num(p.counts.get("lost", 0)),
            num(p.counts.get("duplicates", 0) + p.counts.get("out_of_order", 0)),
            num(p.relay_cpu_s / p.window_s * 100, 0),
            num(p.relay_cpu_s / received * 1e6 if received else float("nan"), 0),
            f"{len(p.gc_pauses)} ({max(p.gc_pauses, default=0) * 1000:.0f})",
            f"{len(p.gen1_pauses)} ({max(p.gen1_pauses, default=0) * 1000:.0f})",
            f"{p.rss_idle_mb:.0f} → {p.rss_connected_mb:.0f} → {p.rss_end_mb:.0f}",
            num(p.kb_per_conn, 1),
            num(p.client_cpu_pct, 0),
            num(p.load, 2),
        )
    return t


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.sse_fanout", description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny run: 5 clients, 10 events")
    ap.add_argument("--clients", default="100,1000", help="comma-separated sweep of C")
    ap.add_argument("--services", type=int, default=50, help="S")
    ap.add_argument("--tenants", type=int, default=10, help="T")
    ap.add_argument("--rate", type=float, default=100.0, help="E, events per second")
    ap.add_argument("--events", type=int, default=1000, help="events per point")
    ap.add_argument(
        "--designs",
        default="fiberflow,pubsub",
        help=f"relays to measure, in order, from: {', '.join(DESIGNS)}",
    )
    ap.add_argument(
        "--api-procs", type=int, default=1, help="relay processes, clients split over them"
    )
    ap.add_argument("--client-procs", type=int, default=0, help="client processes (0: auto)")
    ap.add_argument("--connect-timeout", type=float, default=120.0)
    ap.add_argument("--drain", type=float, default=10.0, help="seconds to wait for stragglers")
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--profile", type=Path, help="py-spy each relay into this dir (if installed)")
    ap.add_argument("--keep", type=Path, help="also write raw latencies (JSON) into this dir")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(clients="5", services=3, tenants=2, events=10, rate=20.0, drain=15.0)
        args = ap.parse_args(argv)
    args.sweep = [int(c) for c in str(args.clients).split(",") if c.strip()]
    return args


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    section = Section("SSE fan-out")
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="bench-sse-") as tmp:
        servers = Servers(Path(tmp))
        try:
            redis_url = servers.redis()
            db_url = servers.sqlite()
            for clients in args.sweep:
                for design in args.designs.split(","):
                    points.append(run_point(servers, db_url, redis_url, design, clients, args))
            floor_lat, floor_rate = (
                ([], 0.0) if args.no_floor else floor(redis_url, args.events, args.rate)
            )
        finally:
            servers.stop_all()
    section.tables.append(
        (
            f"S = {args.services} services over T = {args.tenants} tenants, E = {args.rate:g} "
            f"events/s, {args.events} events per point (each event reaches C/S clients); "
            f"latency = client receipt − publisher's clock before building the event. "
            f"{args.api_procs} relay process(es) per row (uvicorn, uvloop + httptools); "
            f"relay CPU % is of one core, summed over them.",
            table(points),
        )
    )
    split = Table(
        [
            "relay",
            "clients",
            "publish() p50 / p99 ms",
            "clock → XADD p50 / p99 ms",
            "XADD → client p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
        ]
    )
    for p in points:
        d, x, r = p.publish_ms, p.to_xadd_ms, p.relay_ms
        split.add(
            p.design,
            num(p.clients),
            f"{num(d.p50, 2)} / {num(d.p99, 2)}",
            f"{num(x.p50, 2)} / {num(x.p99, 2)}",
            num(r.p50, 2),
            num(r.p95, 2),
            num(r.p99, 2),
            num(r.max, 1),
        )
    section.tables.append(
        (
            "Where the time goes: publish() is EventPublisher.publish (SQLite "
            "insert, XADD, mark published; pub/sub rows add one PUBLISH); "
            "XADD → client is the relay's share.",
            split,
        )
    )
    if floor_lat:
        f = Dist.of(floor_lat).scaled(1000)
        ft = Table(["floor", "events/s", "received", "p50 ms", "p95 ms", "p99 ms", "max ms"])
        ft.add(
            "raw XADD → one redis-py asyncio reader (uvloop)",
            num(floor_rate),
            f"{f.n}/{args.events}",
            num(f.p50, 2),
            num(f.p95, 2),
            num(f.p99, 2),
            num(f.max, 1),
        )
        section.tables.append(("Floor (no database, no HTTP):", ft))
    for p in points:
        if p.client_cpu_pct > 85:
            section.notes.append(
                f"{p.design} at {p.clients} clients: a client process used "
                f"{p.client_cpu_pct:.0f} % of a core — the client side may limit this point."
            )
    if args.profile:
        for p in points:
            path = args.profile / f"{p.design}-{p.clients}.txt"
            if path.exists():
                prof = Table(["function", "% samples on stack", "% samples in it"])
                for fn, incl, own in summarize(path):
                    prof.add(f"`{fn}`", num(incl, 1), num(own, 1))
                caption = f"py-spy profile of the {p.design} relay at {p.clients:,} clients:"
                section.tables.append((caption, prof))
    section.data = {
        "points": [asdict(p) for p in points],
        "floor": asdict(Dist.of(floor_lat).scaled(1000)) if floor_lat else None,
    }
    section.save(args.output, args.json)
    return section


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
