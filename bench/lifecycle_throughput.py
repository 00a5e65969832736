"""Lifecycle throughput through ``fiberflow up`` (a subprocess, as a user runs it): the
lab's SSH devices answer every command after a fixed latency (default 0.2 s), then

1. baseline, same stack: ONE provisioning alone;
2. N provisionings POSTed at once (default 20), each followed over SSE.

Figures: wall time, completion p50/p95, POST -> first progress event (the event's own
timestamp, and its receipt over SSE), device time per run (sum of the audited command
durations) and orchestration overhead (completion minus device time), and the process
worker's concurrency: peak flow-run processes, RSS and CPU-seconds per run process.

    .venv/bin/python -m bench.lifecycle_throughput [--small] [--n 20] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.lifecycle_load import Run, RunProcesses, orders, provision_all, step_seconds
from bench.report import DEFAULT_OUTPUT, Dist, Section, Table, load_average, num
from bench.reprovision_seed import Lab
from bench.servers import wait_for
from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import DeviceCommandAudit
from fiberflow.core.tokens import issue
from fiberflow.devices.inventory import load_inventory
from fiberflow.lab.admin import admin_call
from fiberflow.lab.harness import (
    FIBERFLOW,
    running_stack,
    stack_env,
    throwaway_pg_database,
    wait_healthy,
)
from fiberflow.stack.procs import Supervisor

log = logging.getLogger(__name__)
TENANT = "0b1d6a52-5c1e-4c9a-8f3e-6a2d9b7c4e10"
MIN_AVAILABLE_GIB = 3.0  # below this the benchmark stops the stack (shared machine)
HEADERS = [
    "phase",
    "completed / failed / other",
    "wall s",
    "POST → 202 p50 / p95 s",
    "completion p50 / p95 / max s",
    "POST → 1st progress (hook) p50 / p95 s",
    "… received over SSE p50 / p95 s",
    "device time p50 s",
    "overhead p50 / p95 s",
    "peak run procs",
    "RSS / run proc p50 / max MB",
    "CPU s / run proc p50",
    "load avg",
]


def device_seconds(database_url: str, service_ids: list[str]) -> dict[str, float]:
    """Per service: the summed duration of its audited device commands."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(DeviceCommandAudit.service_id, func.sum(DeviceCommandAudit.duration_ms))
                .where(DeviceCommandAudit.service_id.in_(service_ids))
                .group_by(DeviceCommandAudit.service_id)
            ).all()
    finally:
        engine.dispose()
    return {str(sid): float(ms or 0) / 1000 for sid, ms in rows}


def set_latency(data_dir: Path, latency: float) -> int:
    lab = json.loads((data_dir / "lab.json").read_text())
    devices = lab["admin"]["devices"]
    for dev in devices.values():
        admin_call(int(dev["port"]), "faults", host=dev["host"], latency=latency)
    return len(devices)


def phase(
    label: str, runs: list[Run], device_s: dict[str, float], procs: RunProcesses | None, load: str
) -> list[str]:
    ok = [r for r in runs if r.outcome == "completed"]
    done = [r for r in runs if r.ended_rx is not None]
    completion = Dist.of(r.ended_rx - r.posted_at for r in done if r.ended_rx)
    wall = max((r.ended_rx for r in done if r.ended_rx), default=float("nan")) - min(
        r.posted_at for r in runs
    )
    post = Dist.of(r.accepted_at - r.posted_at for r in runs if r.status == 202)
    hook = Dist.of(r.first_progress_ts - r.posted_at for r in runs if r.first_progress_ts)
    rx = Dist.of(r.first_progress_rx - r.posted_at for r in runs if r.first_progress_rx)
    dev = Dist.of(device_s.get(r.service_id or "", 0.0) for r in ok)
    overhead = Dist.of(
        (r.ended_rx or 0) - r.posted_at - device_s.get(r.service_id or "", 0.0) for r in ok
    )
    failed = sum(r.outcome == "failed" for r in runs)
    other = len(runs) - len(ok) - failed
    rss = Dist.of(procs.rss_mb.values()) if procs else None
    cpu = Dist.of(procs.cpu_s.values()) if procs else None
    return [
        label,
        f"{len(ok)} / {failed} / {other}",
        num(wall, 1),
        f"{num(post.p50, 2)} / {num(post.p95, 2)}",
        f"{num(completion.p50, 1)} / {num(completion.p95, 1)} / {num(completion.max, 1)}",
        f"{num(hook.p50, 2)} / {num(hook.p95, 2)}",
        f"{num(rx.p50, 2)} / {num(rx.p95, 2)}",
        num(dev.p50, 1),
        f"{num(overhead.p50, 1)} / {num(overhead.p95, 1)}",
        str(procs.peak) if procs else "—",
        f"{num(rss.p50, 0)} / {num(rss.max, 0)}" if rss else "—",
        num(cpu.p50, 1) if cpu else "—",
        load,
    ]


def start_workers(sup: Supervisor, data_dir: Path, prefect_api: str, extra: int) -> list[int]:
    """``extra`` more ``fiberflow worker --data-dir D`` processes; waits until the pool
    shows them all online. Returns their pids."""
    from fiberflow.flows.deployments import WORK_POOL

    children = [
        sup.start(
            f"worker-{k}",
            [*FIBERFLOW, "worker", "--data-dir", str(data_dir), "--name", f"bench-worker-{k}"],
            env=stack_env(data_dir),
        )
        for k in range(extra)
    ]

    def online() -> bool:
        resp = httpx.post(f"{prefect_api}/work_pools/{WORK_POOL}/workers/filter", json={})
        return bool(sum(w.get("status") == "ONLINE" for w in resp.json()) >= extra + 1)

    wait_for("extra workers", online, 120)
    return [c.pid for c in children]


def steps_table(phases: list[tuple[str, list[Run]]]) -> Table:
    per_phase = []
    names: list[str] = []
    for _label, runs in phases:
        values: dict[str, list[float]] = {}
        for r in runs:
            for name, sec in step_seconds(r).items():
                values.setdefault(name, []).append(sec)
                if name not in names:
                    names.append(name)
        per_phase.append(values)
    t = Table(["step", *(label for label, _ in phases)])
    for name in names:
        t.add(name, *(num(Dist.of(v.get(name, [])).p50, 2) for v in per_phase))
    return t


@dataclass
class Measured:
    alone: list[Run]
    runs: list[Run]
    procs: RunProcesses
    device_s: dict[str, float]
    devices: int
    startup: float
    alone_load: str
    load: str
    # Per device, what the burst asked of it: the lab's counters and the session limit.
    lab: dict[str, dict[str, Any]] = field(default_factory=dict)


def device_rows(lab: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per device: sessions, lines and injected latency it served during the
    burst, its session limit, and the floor that puts on the burst: a session serves one
    line at a time, so no schedule ends it before latency served / session limit."""
    rows = []
    for name, c in sorted(lab.items()):
        limit = int(c["limit"])
        rows.append([
            name, str(c["logins"]), str(c["commands"]), num(float(c["latency_s"]), 1),
            f"{c['peak_open']} / {limit}", num(float(c["latency_s"]) / limit, 1),
        ])  # fmt: skip
    return rows


def lab_counters(data_dir: Path) -> dict[str, dict[str, Any]]:
    lab = Lab(data_dir)
    inventory = load_inventory(lab.inventory_path)
    limits = {d.name: d.max_sessions for d in [*inventory.olts, *inventory.bngs]}
    return {name: {**c, "limit": limits[name]} for name, c in lab.all("counters").items()
            if name in limits}  # fmt: skip


def measure(args: argparse.Namespace, tmp: Path, variant: str = "warm") -> Measured:
    """Start the stack, run the baseline then the load, stop everything.

    ``variant``: the worker mode (``warm``/``cold``); with no suffix both databases are
    the embedded PostgreSQL of ``up``'s defaults; ``:pg`` puts the Prefect server on a
    throwaway database of the machine's PostgreSQL; ``:sqlite`` puts the project and
    the Prefect server on SQLite files (the embedded default before 0.2.0)."""
    worker_mode, _, prefect_db = variant.partition(":")
    if prefect_db == "pg":
        with throwaway_pg_database("fiberflow_bench_prefect") as url:
            return _measure(args, tmp, worker_mode, url)
    if prefect_db == "sqlite":
        return _measure(
            args, tmp, worker_mode, f"sqlite:///{tmp / 'prefect.db'}",
            database=f"sqlite:///{tmp / 'fiberflow.db'}",
        )  # fmt: skip
    return _measure(args, tmp, worker_mode, None)


def _measure(
    args: argparse.Namespace,
    tmp: Path,
    worker_mode: str,
    prefect_db: str | None,
    database: str | None = None,
) -> Measured:
    # One tenant orders them all: lift its SSE cap and its create rate limit (0 = off).
    env = {
        "FIBERFLOW_SSE_MAX_CONNECTIONS_PER_TENANT": str(args.n + 100),
        "FIBERFLOW_CREATE_RATE_PER_MINUTE": "0",
        "FIBERFLOW_WORKER_MODE": worker_mode,
        **({"FIBERFLOW_PREFECT_DATABASE_URL": prefect_db} if prefect_db else {}),
        **({"FIBERFLOW_DATABASE_URL": database} if database else {}),
    }
    sup = Supervisor(tmp / "bench-logs")
    with running_stack(tmp, **env) as stack:
        try:
            t0 = time.monotonic()
            wait_healthy(stack.api_url, stack.proc, timeout=300)
            startup = time.monotonic() - t0
            info = stack.info()
            key = (stack.data_dir / "dev-jwt-secret").read_text().strip()
            token = issue(
                key, tenant_id=TENANT, role="operator", sub="bench", ttl=timedelta(hours=2)
            )
            devices = set_latency(stack.data_dir, args.latency)
            worker_pids = [info["children"]["worker"]]
            if args.workers > 1:
                prefect_api = info["prefect_api_url"]
                worker_pids += start_workers(sup, stack.data_dir, prefect_api, args.workers - 1)
            stop = threading.Event()

            def low_memory() -> None:
                stop.set()
                stack.proc.send_signal(signal.SIGTERM)

            alone_load = load_average()
            alone = asyncio.run(provision_all(stack.api_url, token, orders(1), 300, stop))
            procs = RunProcesses(worker_pids, MIN_AVAILABLE_GIB, low_memory)
            Lab(stack.data_dir).all("reset_counters")  # count the burst only
            procs.start()
            load = load_average()
            bodies = orders(args.n + 1)[1:]  # not the baseline's
            try:
                runs = asyncio.run(provision_all(stack.api_url, token, bodies, args.timeout, stop))
            finally:
                procs.stop()
            ids = [r.service_id for r in [*alone, *runs] if r.service_id]
            device_s = device_seconds(info["database_url"], ids)
            lab = lab_counters(stack.data_dir)
        finally:
            sup.stop_all(timeout=20)
    return Measured(alone, runs, procs, device_s, devices, startup, alone_load, load, lab)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="bench.lifecycle_throughput", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--small", action="store_true", help="tiny run: 2 provisionings")
    ap.add_argument("--n", type=int, default=20, help="concurrent provisionings")
    ap.add_argument("--workers", type=int, default=1, help="process workers (1: up's own)")
    ap.add_argument(
        "--worker-modes",
        default="warm,cold",
        help="one stack each, in order: FIBERFLOW_WORKER_MODE (warm, cold: Prefect's stock "
        "worker), ':pg' = Prefect server on the machine's PostgreSQL, ':sqlite' = both "
        "databases on SQLite (the embedded default before 0.2.0), e.g. warm,warm:sqlite",
    )
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument("--timeout", type=float, default=900.0, help="bound on the load phase, s")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(n=2, timeout=300.0)
        args = ap.parse_args(argv)
    return args


MODE_LABEL = {
    "warm": "warm worker (forked from a preloaded server)",
    "cold": "cold worker (Prefect's `python -m prefect.engine` per run)",
    "warm:pg": "warm worker, Prefect server on PostgreSQL",
    "cold:pg": "cold worker, Prefect server on PostgreSQL",
    "warm:sqlite": "warm worker, project and Prefect server on SQLite (before 0.2.0)",
    "cold:sqlite": "cold worker, project and Prefect server on SQLite (before 0.2.0)",
}


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    modes = [m.strip() for m in args.worker_modes.split(",") if m.strip()]
    section = Section("Lifecycle throughput")
    table = Table(["worker", *HEADERS])
    phases: list[tuple[str, list[Run]]] = []
    data: dict[str, object] = {}
    device_tables: list[tuple[str, Table]] = []
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="bench-life-") as tmp:
            m = measure(args, Path(tmp), mode)
        label = MODE_LABEL.get(mode, mode)
        table.rows.append(
            [
                label,
                *phase("1 provisioning alone (baseline)", m.alone, m.device_s, None, m.alone_load),
            ]
        )
        table.rows.append([label, *phase(f"{args.n} at once", m.runs, m.device_s, m.procs, m.load)])
        phases += [(f"{mode}: alone", m.alone), (f"{mode}: {args.n} at once", m.runs)]
        errors = {r.error for r in [*m.alone, *m.runs] if r.error}
        if errors:
            section.notes.append(f"{mode}: errors: " + "; ".join(sorted(errors))[:600])
        if m.procs.low_memory:
            section.notes.append(
                f"{mode}: stopped early: available memory fell below {MIN_AVAILABLE_GIB} GiB"
            )
        rss = Dist.of(m.procs.rss_mb.values())
        if rss.n:
            fit = psutil.virtual_memory().total / 2**20 / rss.p50
            section.notes.append(
                f"{mode}: {rss.n} flow-run processes seen; at {rss.p50:.0f} MB each "
                f"(memory of their own, USS: shared pages of a forked process count once), "
                f"the machine's RAM holds about {fit:.0f} concurrent runs."
            )
        data[mode] = {
            "alone": [asdict(r) for r in m.alone],
            "runs": [asdict(r) for r in m.runs],
            "device_seconds": m.device_s,
            "peak_run_processes": m.procs.peak,
            "run_process_rss_mb": list(m.procs.rss_mb.values()),
            "run_process_cpu_s": list(m.procs.cpu_s.values()),
            "startup_s": m.startup,
            "devices": m.devices,
            "lab": m.lab,
        }
        if m.lab:
            device_tables.append(
                (
                    f"{mode}: what the {args.n} at once asked of each device (the lab's own "
                    "counters): a session serves one line at a time, so the burst cannot end "
                    "before the largest floor = latency served / session limit.",
                    Table(
                        [
                            "device",
                            "sessions",
                            "lines",
                            "latency served s",
                            "peak open / limit",
                            "floor s",
                        ],
                        device_rows(m.lab),
                    ),  # fmt: skip
                )
            )
    section.tables.append(
        (
            f"`fiberflow up` on embedded defaults (its own PostgreSQL for the project and "
            f"the Prefect server, unless the row says otherwise), one fresh stack per row pair, "
            f"{args.workers} worker(s), lab SSH devices at "
            f"{args.latency:g} s per command, per-device session limit from the lab "
            f"inventory. RSS / run proc is the memory of its own (USS).",
            table,
        )
    )
    section.tables.append(
        (
            "Where a run's time goes: p50 seconds per step, from one step's "
            "first progress event to the next (event timestamps):",
            steps_table(phases),
        )
    )
    section.tables += device_tables
    section.data = {"workers": args.workers, "modes": data}
    section.save(args.output, args.json)
    return section


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
