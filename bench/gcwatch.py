"""An app factory wrapper that logs the relay's garbage-collector pauses.

``uvicorn bench.gcwatch:create_app --factory`` builds the app named by BENCH_APP
(``module:factory``) unchanged and registers a ``gc.callbacks`` hook that appends one
line per collection of generation >= BENCH_GC_MIN_GEN (default 1; 2 = full collections)
to BENCH_GC_LOG: ``<wall start> <pause seconds> <generation> <collected>``. The hook
costs two clock readings per collection; it changes nothing else unless an experiment
variable below is set.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import time
from pathlib import Path
from typing import Any


def _install(path: str, min_gen: int) -> None:
    log = open(path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)
    started: list[float] = [0.0, 0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] < min_gen:
            return
        if phase == "start":
            started[0], started[1] = time.time(), time.perf_counter()
        else:
            pause = time.perf_counter() - started[1]
            log.write(f"{started[0]:.6f} {pause:.6f} {info['generation']} {info['collected']}\n")

    gc.callbacks.append(callback)


def create_app() -> Any:
    module, _, factory = os.environ["BENCH_APP"].partition(":")
    app = getattr(importlib.import_module(module), factory)()
    path = os.environ.get("BENCH_GC_LOG")
    if path:
        _install(path, int(os.environ.get("BENCH_GC_MIN_GEN", "1")))
    # Experiment (off unless asked): gc.freeze() on SIGUSR1, which the benchmark sends
    # once its clients are connected — what a relay could do itself.
    if os.environ.get("BENCH_GC_FREEZE_ON_USR1") == "1":
        signal.signal(signal.SIGUSR1, lambda _s, _f: gc.freeze())
    return app


def pauses(path: str, since: float, until: float, generation: int = 2) -> list[float]:
    """Pause lengths (seconds) of the collections of ``generation`` logged between two
    wall times."""
    try:
        lines = Path(path).read_text().split("\n")
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and int(parts[2]) == generation and since <= float(parts[0]) <= until:
            out.append(float(parts[1]))
    return out
