"""Bulk reprovisioning through ``fiberflow up``: N active services, a fraction
of them drifted in the lab, and the nightly deployment ``reprovision-nightly`` run once.

1. seed N ACTIVE services without provisioning flows: the service rows, IP and VLAN
   through fiberflow's allocators (core/ipam.py), the RADIUS rows through its store
   (devices/radius/sql.py), and the ONTs, service-ports and BNG sub-interfaces through
   the lab's ``seed`` admin op (the state the CLI path makes; tests/devices/lab);
2. drift ``--drift`` of them, four kinds in turn: ONT deleted on the OLT, BNG
   sub-interface removed, RADIUS Framed-IP-Address changed, BNG input policy changed;
3. lab latency per command, then one run of ``reprovision-all/reprovision-nightly``.

Baselines in the same stack: the same bulk run at latency 0 (the orchestration floor;
the same drift is put back first), and one service's reprovisioning alone (an in-sync
one and a drifted one, through the ``reprovision`` deployment).

Figures: wall time, services in_sync / repaired / failed / not run, per-service duration
(its first reprovisioning event -> its completed/failed event) and completion (trigger ->
that event) p50/p95/max, device time (sum of the audited command durations), overhead per
service (duration minus device time), peak CLI sessions per lab device, CPU and RSS of the
flow-run process. At the end of each run every service's OLT, BNG and RADIUS state is
compared with its database row (lab ``dump``): drift left over is an error.

    .venv/bin/python -m bench.reprovision_bulk [--small] [--services 1000] [--latency 0.2]
        [--drift 0.1] [--no-floor] [--output FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from bench.report import DEFAULT_OUTPUT, Section
from bench.reprovision_report import report
from bench.reprovision_run import measure


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-reprov-") as tmp:
        m = measure(args, Path(tmp))
    section = report(m)
    section.save(args.output, args.json)
    return section


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="bench.reprovision_bulk", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--small", action="store_true", help="tiny run: 6 services, 2 drifted")
    ap.add_argument("--services", type=int, default=1000, help="active services seeded")
    ap.add_argument("--drift", type=float, default=0.1, help="fraction of them drifted")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                    help="also the bulk run at latency 0 (not when --latency is 0)")  # fmt: skip
    ap.add_argument("--timeout", type=float, default=3600.0, help="bound on one bulk run, s")
    ap.add_argument("--seed", type=int, default=7, help="which services drift")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(services=6, drift=2 / 6, latency=0.0, timeout=300.0)
        args = ap.parse_args(argv)
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
