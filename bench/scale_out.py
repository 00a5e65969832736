"""Scale-out: the lifecycle load (bench.lifecycle_throughput) with 1, 2 and 4 process
workers, each count in a fresh ``fiberflow up`` (extra workers join it as
``fiberflow worker --data-dir D``, as on other machines). The SSE half of scale-out
(clients split over several API processes) is ``bench.sse_fanout --api-procs 2``.

    .venv/bin/python -m bench.scale_out [--small] [--workers 1,2,4] [--n 20]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.lifecycle_throughput import HEADERS, measure, phase
from bench.report import DEFAULT_OUTPUT, Section, Table

DATABASES = {
    "embedded": "up's own PostgreSQL",
    "pg": "project on up's own PostgreSQL, Prefect server on the machine's PostgreSQL",
    "sqlite": "SQLite files for the project and the Prefect server",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.scale_out", description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny run: 1 and 2 workers, n = 2")
    ap.add_argument("--workers", default="1,2,4", help="worker counts to compare")
    ap.add_argument("--n", type=int, default=20, help="concurrent provisionings per count")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument("--timeout", type=float, default=900.0, help="bound on each load phase, s")
    ap.add_argument(
        "--prefect-db",
        choices=("embedded", "pg", "sqlite"),
        default="embedded",
        help="the Prefect server's database: embedded (up's own PostgreSQL), pg (a throwaway "
        "database of the machine's PostgreSQL), sqlite (both databases on SQLite files)",
    )
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(workers="1,2", n=2, timeout=300.0)
        args = ap.parse_args(argv)
    args.sweep = [int(w) for w in str(args.workers).split(",") if w.strip()]
    return args


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    section = Section("Scale-out: lifecycle load over 1, 2, 4 workers")
    table = Table(["workers", *HEADERS])
    data = []
    for workers in args.sweep:
        args.workers = workers
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            variant = {"embedded": "warm", "pg": "warm:pg", "sqlite": "warm:sqlite"}
            m = measure(args, Path(tmp), variant[args.prefect_db])
        if workers == args.sweep[0]:
            table.rows.append(
                ["—", *phase("1 alone (baseline)", m.alone, m.device_s, None, m.alone_load)]
            )
        table.rows.append(
            [str(workers), *phase(f"{args.n} at once", m.runs, m.device_s, m.procs, m.load)]
        )
        data.append(
            {
                "workers": workers,
                "runs": [asdict(r) for r in m.runs],
                "peak_run_processes": m.procs.peak,
            }
        )
    section.tables.append(
        (
            f"Each worker count in a fresh stack (databases: {DATABASES[args.prefect_db]}, "
            f"warm workers, lab SSH "
            f"devices at {args.latency:g} s per command, per-device session limit from the lab "
            f"inventory). All workers share this machine's 2 cores.",
            table,
        )
    )
    section.data = {"sweep": data}
    section.save(args.output, args.json)
    return section


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
