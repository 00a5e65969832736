"""Child processes of ``fiberflow up``: started in their own process groups, stopped together.

Each child leads its own process group, so stopping it also stops whatever it spawned
(Prefect's server and workers start subprocesses). PR_SET_PDEATHSIG makes a child die
with ``up`` even if ``up`` itself is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fiberflow.core import ports

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent exits (no-op elsewhere)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    die_with_parent(signal.SIGTERM)


def _child_setup(nice: int) -> Callable[[], None]:
    """What runs in the child between fork and exec: the death signal, then ``nice``."""

    def setup() -> None:
        _die_with_parent()
        if nice:
            os.nice(nice)

    return setup


def _primary_group(user: str | None) -> int | None:
    return pwd.getpwnam(user).pw_gid if user else None


def free_port(host: str = "127.0.0.1") -> int:
    # One helper for the whole tree (core.ports): test workers running side by side
    # take ports from blocks of their own.
    return ports.free_port(host)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    user: str | None = None
    nice: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Supervisor:
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        user: str | None = None,
        nice: int = 0,
    ) -> Child:
        """Start ``argv`` in a process group of its own, output to ``<log_dir>/<name>.log``;
        ``user`` (as root only) runs it as that user, ``nice`` lowers its CPU priority
        (and that of everything it spawns)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        out = log_path.open("ab")
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # The user switch happens before preexec_fn in the child, so the death
            # signal (cleared by a credential change) is set for the final user.
            # With the user's own group and no supplementary ones: root's group would
            # otherwise stay, and the group bits of root-owned folders then apply.
            user=user,
            group=_primary_group(user),
            extra_groups=[] if user else None,
            preexec_fn=_child_setup(nice),
        )
        out.close()
        child = Child(name, proc, log_path, argv, env, user, nice)
        self.children.append(child)
        log.info("started %s (pid %d)", name, proc.pid, extra={"child": name})
        return child

    def run_once(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> int:
        """Run a short-lived child to completion (killed with its group on timeout)."""
        child = self.start(name, argv, env=env)
        try:
            code = child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(child.pid, signal.SIGKILL)
            code = -9
        self.children.remove(child)
        return code

    def restart(self, child: Child) -> Child:
        """Start a child that exited again (what is left of its group is killed first)."""
        _signal_group(child.pid, signal.SIGKILL)
        self.children.remove(child)
        return self.start(child.name, child.argv, env=child.env, user=child.user, nice=child.nice)

    def stop(self, child: Child, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Stop one child: ``sig`` to its group, SIGKILL after ``timeout`` s. Its exit
        code (-9 when killed)."""
        _signal_group(child.pid, sig)
        try:
            code = child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = -9
        _signal_group(child.pid, signal.SIGKILL)  # whatever is left of its group
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(5)
        self.forget(child)
        return code

    def forget(self, child: Child) -> None:
        """No longer watch ``child`` (it exited as it should)."""
        if child in self.children:
            self.children.remove(child)

    def dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every group (newest first), wait, then SIGKILL what is left."""
        for child in reversed(self.children):
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.proc.wait(remaining)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing", child.name)
        for child in self.children:
            # The leader may be gone while grandchildren linger: kill the whole group.
            _signal_group(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(5)
        self.children.clear()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
