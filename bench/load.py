"""Load: W lifecycle workflows arriving at a steady rate over M minutes through
``fiberflow up`` (a subprocess, as a user runs it), with C SSE clients listening; the
lab's SSH devices answer every command after a fixed latency (default 0.2 s).

1. baseline, same stack: one provisioning alone, then its suspension, resumption and
   termination, each alone;
2. the load: arrival *i* at ``i * M*60/W`` s, mostly provisionings, plus suspensions,
   resumptions and terminations of services provisioned earlier in the run (only of a
   service whose last operation completed and that is in the right status, so none
   answers 409 by design; when none is eligible, a provisioning now and that operation
   at a later provisioning's turn). Each is followed over
   SSE to its own completed/failed event. Every arrival brings ~C/W SSE listeners to its
   service: most connect at once, some late (catch-up), some drop their connection
   mid-run and reconnect with ``Last-Event-ID``. Each records every event id it gets.
3. the check: every service's full history (``GET /api/v1/services/{id}/events``, the
   same ids as SSE) against every listener: each must get every id from its start
   point on exactly once, in order; every workflow must have its completed event and
   its service the right status.

    .venv/bin/python -m bench.load [--small] [--workflows 100] [--minutes 5]
        [--sse-clients 500] [--latency 0.2] [--output FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from bench.load_report import report
from bench.load_run import measure
from bench.report import DEFAULT_OUTPUT, Section


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        m = measure(args, Path(tmp))
    section = report(args, m)
    section.save(args.output, args.json)
    return section


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny run: 5 workflows over 30 s")
    ap.add_argument("--workflows", type=int, default=100, help="workflows arriving")
    ap.add_argument("--minutes", type=float, default=5.0, help="arrival window, minutes")
    ap.add_argument("--sse-clients", type=int, default=500, help="SSE listeners in all")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument(
        "--timeout", type=float, default=900.0, help="bound after the window for runs to end, s"
    )
    ap.add_argument("--drain", type=float, default=30.0, help="bound for listeners to catch up, s")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(workflows=5, minutes=0.5, sse_clients=20, latency=0.0, timeout=300.0)
        args = ap.parse_args(argv)
    if args.workflows < 1 or args.minutes <= 0 or args.sse_clients < 0:
        ap.error("--workflows must be >= 1, --minutes > 0, --sse-clients >= 0")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
