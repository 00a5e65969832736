"""core/worker.py: flow-run processes fork from a warm, preloaded server.

The whole path (poll, fork, run, crash handling) runs in every whole-stack test
(`fiberflow up` starts this worker); tests/flows/test_reconciler.py kills a run's process
alone. Here: what makes the fork warm, which multiprocessing would otherwise fail
silently (a preload module that does not import is skipped without a word)."""

from __future__ import annotations

import multiprocessing
import sys
import threading

from core import worker
from core.stack import worker_argv
from flows.deployments import DEPLOYMENTS


def _report(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(
        {
            "loaded": sorted(m for m in worker.PRELOAD if m in sys.modules),
            "threads": threading.active_count(),
        }
    )


def test_children_start_with_prefect_and_every_flow_imported() -> None:
    ctx = worker.warm_context()
    queue = ctx.Queue()
    child = ctx.Process(target=_report, args=(queue,))
    child.start()
    report = queue.get(timeout=120)
    child.join(30)
    assert child.exitcode == 0
    assert report["loaded"] == sorted(worker.PRELOAD)
    # Forked from a single-threaded server: no thread state (locks, Prefect's log
    # shipper) copied half-way into the run's process.
    assert report["threads"] == 1


def test_every_deployed_flow_module_is_preloaded() -> None:
    modules = {spec.entrypoint.partition(":")[0] for spec in DEPLOYMENTS}
    assert modules <= set(worker.PRELOAD)


def test_worker_mode_chooses_the_command() -> None:
    warm = worker_argv("w1", "warm")
    assert warm[1:3] == ["-c", "from core.worker import main; main()"]
    assert warm[-4:] == ["--pool", "fiberflow", "--name", "w1"]
    cold = worker_argv("w1", "cold")
    assert cold[1:5] == ["-m", "prefect", "worker", "start"] and "--type" in cold
