"""One bulk suspension of N services through ``fiberflow up``, watched by L operators.

1. ``fiberflow lab seed`` (lab/seed) writes N + B active services at once (enough OLTs
   started for them); the lab's devices answer every CLI line after ``--latency``
   (default 200 ms);
2. baseline, in the same run: B of them suspended as B single ``POST
   /api/v1/services/{id}/suspend`` at the bulk's pace (one every 60/rate s);
3. one ``POST /api/v1/bulk/suspend`` of the other N (approved by a second operator when N
   is over the four-eyes threshold) at ``FIBERFLOW_BULK_RATE`` (``--rate``), with L SSE
   listeners on ``GET /api/v1/realtime/bulk/{id}`` from the start.

Figures: wall time; starts per minute held (from ``bulk_items.started_at``; the
baseline's from its POSTs); peak sessions per device, as the lab devices counted them,
against each device's ``max_sessions``; events delivered to the listeners against the
bulk's events in ``event_log`` (lost, duplicated, out of order).

    .venv/bin/python -m bench.bulk_suspension [--small] [--services 2000] [--rate R]
        [--listeners 200] [--baseline 60] [--latency 0.2] [--output FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from bench.bulk_listeners import Listeners
from bench.report import DEFAULT_OUTPUT, Section, Table, load_average, num
from bench.reprovision_run import Stack
from fiberflow.core.db.engine import make_engine
from fiberflow.core.settings import get_settings
from fiberflow.devices.inventory import load_inventory
from fiberflow.lab.harness import FIBERFLOW, RunningStack, running_stack, stack_env, wait_healthy
from fiberflow.lab.lab_inventory import capacity
from fiberflow.lab.seed.run import seed_services

TENANT = "3c9e7a51-8b2d-4f6e-a1c4-7d5e9f0b2a6c"
ENDED = {"completed", "failed", "cancelled", "rejected"}


def _olts_for(n: int) -> int:
    return next(k for k in range(2, 64) if capacity(k) >= n)


def _auth(up: RunningStack, sub: str) -> dict[str, str]:
    token = subprocess.run(
        [*FIBERFLOW, "token", "--tenant", TENANT, "--role", "operator", "--sub", sub],
        env=stack_env(up.data_dir), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def _pace(starts: list[datetime]) -> dict[str, float]:
    """Starts per minute over the batch, and the smallest gap between two starts."""
    s = sorted(starts)
    span = (s[-1] - s[0]).total_seconds() if len(s) > 1 else 0.0
    gaps = [(b - a).total_seconds() for a, b in zip(s, s[1:], strict=False)]
    return {"starts": len(s), "span_s": span,
            "per_minute": (len(s) - 1) / span * 60 if span else float("nan"),
            "min_gap_s": min(gaps, default=float("nan"))}  # fmt: skip


def _ids(db: Engine) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT id FROM service_instances WHERE tenant_id = :t "
                                 "ORDER BY created_at, id"), {"t": TENANT})  # fmt: skip
        return [r[0] for r in rows]


def _statuses(db: Engine, ids: list[str]) -> dict[str, int]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM service_instances "
                                 "WHERE id = ANY(:ids) GROUP BY status"), {"ids": ids})  # fmt: skip
        return {status: int(n) for status, n in rows}


def _events(db: Engine, bulk_id: str) -> list[int]:
    """The bulk's event ids in the event log, once its ``bulk.completed`` is stored (the
    parent stores it just after the status the benchmark polls)."""
    query = text("SELECT id, event_type FROM event_log WHERE operation = 'bulk' "
                 "AND operation_id = :b ORDER BY id")  # fmt: skip
    for _ in range(120):  # bounded: a bulk that never completes is reported as such
        with db.connect() as conn:
            rows = conn.execute(query, {"b": bulk_id}).all()
        if any(kind == "bulk.completed" for _, kind in rows):
            break
        time.sleep(0.5)
    return [int(event_id) for event_id, _ in rows]


def _peaks(stack: Stack) -> dict[str, int]:
    return {name: int(c["peak_open"]) for name, c in stack.lab.all("counters").items()}


def baseline(up: RunningStack, stack: Stack, db: Engine, ids: list[str],
             rate: float, timeout: float) -> dict[str, Any]:  # fmt: skip
    """``ids`` suspended one POST each, one every 60/rate s."""
    stack.lab.all("reset_counters")
    headers, interval = _auth(up, "bench-operator"), 60.0 / rate
    sent: list[datetime] = []
    codes: dict[int, int] = {}
    started = time.monotonic()
    with httpx.Client(base_url=up.api_url, headers=headers, timeout=60) as client:
        for i, sid in enumerate(ids):
            time.sleep(max(0.0, started + i * interval - time.monotonic()))
            sent.append(datetime.now(UTC))
            code = client.post(f"/api/v1/services/{sid}/suspend").status_code
            codes[code] = codes.get(code, 0) + 1
    deadline = time.monotonic() + timeout
    while (st := _statuses(db, ids)).get("suspending") and time.monotonic() < deadline:
        time.sleep(0.5)
    return {"services": len(ids), "wall_s": time.monotonic() - started, "pace": _pace(sent),
            "codes": codes, "statuses": st, "peaks": _peaks(stack)}  # fmt: skip


def bulk(up: RunningStack, stack: Stack, db: Engine, ids: list[str], listeners: int,
         timeout: float) -> dict[str, Any]:  # fmt: skip
    stack.lab.all("reset_counters")
    headers = _auth(up, "bench-operator")
    with httpx.Client(base_url=up.api_url, headers=headers, timeout=120) as client:
        t0 = time.monotonic()
        r = client.post("/api/v1/bulk/suspend", json={"service_ids": ids})
        r.raise_for_status()
        bulk_id = str(r.json()["id"])
        watchers = Listeners(up.api_url, headers, bulk_id, listeners, timeout)
        watchers.start()
        while (got := client.get(f"/api/v1/bulk/{bulk_id}").json())["status"] == "scheduled":
            time.sleep(0.2)
        approved = None
        if got["status"] == "awaiting_approval":  # over the four-eyes threshold
            approver = _auth(up, "bench-approver")
            client.post(f"/api/v1/bulk/{bulk_id}/approve", headers=approver).raise_for_status()
            approved = time.monotonic() - t0
        deadline = time.monotonic() + timeout
        while (got := client.get(f"/api/v1/bulk/{bulk_id}").json())["status"] not in ENDED:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        wall = time.monotonic() - t0 - (approved or 0.0)
    watchers.join()
    with db.connect() as conn:
        starts = [r[0] for r in conn.execute(text(
            "SELECT started_at FROM bulk_items WHERE bulk_id = :b AND started_at IS NOT NULL"),
            {"b": bulk_id})]  # fmt: skip
    events = _events(db, bulk_id)
    return {"services": len(ids), "bulk_id": bulk_id, "status": got["status"],
            "counts": got["counts"], "wall_s": wall, "approval_s": approved,
            "pace": _pace(starts), "events": len(events), "sse": watchers.summary(events),
            "peaks": _peaks(stack)}  # fmt: skip


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    total = args.services + args.baseline
    started, load_before = datetime.now(UTC), load_average()
    olts = _olts_for(total)
    env = {"FIBERFLOW_LAB_OLTS": str(olts), "FIBERFLOW_BULK_RATE": str(args.rate),
           # every listener is an operator of the one tenant
           "FIBERFLOW_SSE_MAX_CONNECTIONS_PER_TENANT": str(args.listeners + 20)}  # fmt: skip
    with running_stack(tmp, **env) as up:
        wait_healthy(up.api_url, up.proc, timeout=300)
        stack = Stack(up.data_dir, up.info(), threading.Event())
        t0 = time.monotonic()
        seed_services(up.data_dir, stack.database_url, total, TENANT)
        seed_s = time.monotonic() - t0
        db = make_engine(stack.database_url)
        ids = _ids(db)
        limits = {d.name: d.max_sessions
                  for inv in [load_inventory(stack.lab.inventory_path)]
                  for d in [*inv.olts, *inv.bngs]}  # fmt: skip
        stack.set_latency(args.latency)
        base = baseline(up, stack, db, ids[args.services :], args.rate, args.timeout)
        batch = bulk(up, stack, db, ids[: args.services], args.listeners, args.timeout)
        db.dispose()
    return {"services": args.services, "rate": args.rate, "latency": args.latency,
            "listeners": args.listeners, "olts": olts, "seed_s": seed_s, "limits": limits,
            "baseline": base, "bulk": batch, "started": started,
            "load_before": load_before}  # fmt: skip


def _errors(d: dict[str, Any]) -> list[str]:
    b, sse = d["bulk"], d["bulk"]["sse"]
    errors = []
    if b["status"] != "completed" or b["counts"]["completed"] != b["services"]:
        errors.append(f"bulk ended {b['status']} with {b['counts']}")
    if sse["lost"] or sse["duplicates"] or sse["out_of_order"] or sse["foreign"]:
        errors.append(f"listeners: {sse}")
    if sse["completed"] != sse["listeners"]:
        errors.append(f"{sse['listeners'] - sse['completed']} listeners never got "
                      f"bulk.completed: {sse['errors']}")  # fmt: skip
    over = {n: p for n, p in b["peaks"].items() if p > d["limits"].get(n, p)}
    if over:
        errors.append(f"device sessions over the limit during the bulk: {over}")
    if b["pace"]["min_gap_s"] < 60 / d["rate"] - 0.05:  # clock resolution
        errors.append(f"two starts {b['pace']['min_gap_s']:.3f} s apart at rate {d['rate']}")
    return errors


def report(d: dict[str, Any]) -> Section:
    # The run's start, not the report's: the table's load average brackets the run.
    section = Section("Bulk suspension", started=d["started"], load_before=d["load_before"])
    b, base = d["bulk"], d["baseline"]
    t = Table(["run", "services", "rate set /min", "wall s", "starts/min held",
               "min gap s", "peak sessions (max device)", "limit", "suspended",
               "listeners", "events each", "delivered", "lost"])  # fmt: skip
    limit = max(d["limits"].values(), default=0)
    sse = b["sse"]
    t.add("1 bulk request", num(b["services"]), num(d["rate"], 0), num(b["wall_s"]),
          num(b["pace"]["per_minute"]), num(b["pace"]["min_gap_s"], 3),
          num(max(b["peaks"].values(), default=0)), num(limit), num(b["counts"]["completed"]),
          num(sse["connected"]), num(b["events"]), num(sse["delivered"]),
          num(sse["lost"]))  # fmt: skip
    t.add("single POSTs, same pace (baseline)", num(base["services"]), num(d["rate"], 0),
          num(base["wall_s"]), num(base["pace"]["per_minute"]),
          num(base["pace"]["min_gap_s"], 3), num(max(base["peaks"].values(), default=0)),
          num(limit), num(base["statuses"].get("suspended", 0)), "—", "—", "—", "—")  # fmt: skip
    section.tables.append(("", t))
    dev = Table(["device", "max_sessions", "peak: bulk", "peak: baseline"])
    for name in sorted(d["limits"]):
        dev.add(name, num(d["limits"][name]), num(b["peaks"].get(name, 0)),
                num(base["peaks"].get(name, 0)))  # fmt: skip
    section.tables.append(("Peak open CLI sessions per device, as the lab counted them:", dev))
    section.notes.append(
        f"{d['olts']} OLTs; lab latency {d['latency']:g} s per CLI line; seeding "
        f"{d['services'] + base['services']:,} services took {d['seed_s']:.1f} s"
    )
    if b["approval_s"] is not None:
        section.notes.append(f"four-eyes approval given {b['approval_s']:.1f} s after the "
                             "request; wall time counted from it")  # fmt: skip
    errors = _errors(d)
    section.notes += errors
    section.data = {**d, "errors": errors}
    return section


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        section = report(measure(args, Path(tmp)))
    section.save(args.output, args.json)
    return section


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.bulk_suspension",
                                 description=__doc__.split("\n\n")[0])  # fmt: skip
    ap.add_argument("--small", action="store_true", help="tiny run: 6 services, 3 baseline")
    ap.add_argument("--services", type=int, default=2000, help="services in the bulk")
    ap.add_argument("--baseline", type=int, default=60, help="services suspended one by one")
    rate = get_settings().bulk_rate
    ap.add_argument("--rate", type=float, default=rate, help="starts per minute "
                    f"(FIBERFLOW_BULK_RATE; default {rate:g}, the setting)")  # fmt: skip
    ap.add_argument("--listeners", type=int, default=200, help="SSE listeners of the bulk")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument("--timeout", type=float, help="bound on each phase, s (default from N)")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(services=6, baseline=3, rate=600.0, listeners=5, latency=0.05)
        args = ap.parse_args(argv)
    if args.timeout is None:  # the pace alone takes N/rate minutes
        args.timeout = (args.services + args.baseline) / args.rate * 60 * 2 + 900
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
