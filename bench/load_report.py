"""The load benchmark's report: the operations table (baseline and under load), the
run's figures, the notes, and the JSON data."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from typing import Any

from bench.lifecycle_load import Run
from bench.lifecycle_throughput import MIN_AVAILABLE_GIB
from bench.load_arrivals import OPERATIONS
from bench.load_check import workflow_errors
from bench.load_run import Measured
from bench.report import Dist, Section, Table, num


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


def report(args: argparse.Namespace, m: Measured) -> Section:
    """The section of the run ``m`` made with ``args``."""
    section = Section("Load")
    load, s = m.load, m.sampler
    errors = workflow_errors(load.runs, m.histories, m.final_status)
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
    return section
