"""Waiting for the parts of ``fiberflow up`` while watching the others: a part is ready
(or, short-lived, has exited), or the start fails with :class:`StackError` naming it."""

from __future__ import annotations

import logging
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from fiberflow.stack.procs import Child, Supervisor

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A part of the stack failed to start; the message says which and why."""


@dataclass
class Readiness:
    sup: Supervisor
    #: True once ``up`` was asked to stop: a wait then ends with KeyboardInterrupt.
    stopping: Callable[[], bool]

    def wait(self, name: str, probe: Callable[[], bool], timeout: float) -> None:
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.stopping():
                raise KeyboardInterrupt
            dead = self.sup.dead()
            if dead is not None:
                raise StackError(f"{dead.name} exited early (see {dead.log_path}):\n{dead.tail()}")
            try:
                if probe():
                    log.info("%s ready (waited %.1f s)", name, time.monotonic() - started)
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.2)
        raise StackError(f"{name} was not ready within {timeout:.0f} s")

    def wait_exit(self, child: Child, timeout: float) -> int:
        """Wait for a short-lived ``child`` to exit (killed after ``timeout`` s, -9) while
        watching the others; returns its exit code."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            self.wait(child.name, lambda: child.proc.poll() is not None, timeout)
        except StackError:
            if child.proc.poll() is None:  # the time is up, or another child died
                self.sup.stop(child, signal.SIGKILL, 5)
                if self.sup.dead() is not None:
                    raise
                return -9
            if self.sup.dead() not in (None, child):
                raise
        self.sup.forget(child)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        log.info("%s exited with %d (%.1f CPU-s)", child.name, child.proc.returncode, cpu)
        return child.proc.returncode


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def http_answers(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code in (200, 503)
