"""stack/procs.py: children of ``fiberflow up`` in process groups of their own, with the
CPU priority ``up`` gives them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

from fiberflow.core.settings import Settings
from fiberflow.stack.procs import Supervisor

SLEEPER = [sys.executable, "-c", "import subprocess, sys; "
           "subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])"]  # fmt: skip


def _nice_of_tree(pid: int) -> set[int]:
    proc = psutil.Process(pid)
    return {p.nice() for p in [proc, *proc.children(recursive=True)]}


def test_a_niced_child_and_what_it_spawns_run_at_that_priority(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    niced = sup.start("niced", SLEEPER, nice=7)
    plain = sup.start("plain", SLEEPER)
    try:
        _wait_for_grandchild(niced.pid)
        assert _nice_of_tree(niced.pid) == {psutil.Process().nice() + 7}
        assert _nice_of_tree(plain.pid) == {psutil.Process().nice()}
        # A restarted child (a dead worker brought back) keeps its priority.
        niced.proc.kill()
        niced.proc.wait(10)
        again = sup.restart(niced)
        assert again.nice == 7
        assert psutil.Process(again.pid).nice() == psutil.Process().nice() + 7
    finally:
        sup.stop_all()


def _wait_for_grandchild(pid: int) -> None:
    proc = psutil.Process(pid)
    for _ in range(200):
        if proc.children():
            return
        time.sleep(0.05)
    raise AssertionError("the child did not start its own child")


def test_the_worker_runs_below_the_api_by_default() -> None:
    assert Settings.model_fields["worker_nice"].default == 10
    assert Settings(worker_nice=0).worker_nice == 0
