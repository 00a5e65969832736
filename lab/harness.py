"""Start a whole fiberflow stack in a subprocess for tests, benchmarks and demos.

``running_stack`` runs ``fiberflow up`` as a user would: a subprocess on free ports with
a data dir of its own, stopped on exit together with everything it started.
``throwaway_pg_database`` gives a run an empty PostgreSQL database of its own. Plain
functions and context managers: the test suite puts its pytest fixtures on top.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Engine, create_engine, text

import fiberflow
from fiberflow.core import ports

if TYPE_CHECKING:
    import psutil

FIBERFLOW = [sys.executable, "-m", "fiberflow.stack.cli"]
#: The directory ``import fiberflow`` resolves from (the repository, or site-packages):
#: a stack started from any working directory imports this same fiberflow.
IMPORT_ROOT = Path(fiberflow.__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "FIBERFLOW_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class RunningStack:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    api_port: int
    prefect_port: int
    log: Path

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def info(self) -> dict[str, Any]:
        """The stack's ``stack.json``: its children's pids, URLs and database."""
        return json.loads((self.data_dir / "stack.json").read_text())  # type: ignore[no-any-return]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port(host: str = "127.0.0.1") -> int:
    # core.ports: test workers running side by side take ports from blocks of their own.
    return ports.free_port(host)


def stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its fiberflow and Prefect settings, in dev
    mode, on ``data_dir``; ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIBERFLOW_", "PREFECT_"))}
    env.update(
        FIBERFLOW_DEV_MODE="1", FIBERFLOW_DATA_DIR=str(data_dir), PYTHONPATH=str(IMPORT_ROOT)
    )
    env.update(extra)
    return env


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> dict[str, Any]:
    """``/healthz``'s report once it answers 200; AssertionError if ``proc`` exits or
    the time is up first (a guard against a hung start, not a speed check: on a loaded
    machine, the test suite's parallel workers included, a first start has taken over
    two minutes)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"fiberflow up exited with {proc.returncode}")
        try:
            r = httpx.get(f"{url}/healthz", timeout=3)
            last = (r.status_code, r.text)
            if r.status_code == 200:
                return r.json()  # type: ignore[no-any-return]
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"/healthz not 200 within {timeout} s; last: {last}")


def processes_of(data_dir: Path) -> list[psutil.Process]:
    """Every live process started for this data dir (found by its environment or argv)."""
    # psutil comes with the test extra, not the product: imported only when sweeping up.
    import psutil

    found = []
    needle = str(data_dir)
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if p.pid == os.getpid():
            continue
        ours = needle in cmd or env.get("FIBERFLOW_DATA_DIR") == needle
        if ours and p.status() != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


@contextmanager
def running_stack(tmp: Path, **env_extra: str) -> Iterator[RunningStack]:
    """``fiberflow up`` on free ports with ``tmp/data`` as its data dir and its output
    in ``tmp/up.log``; SIGTERM on exit (SIGKILL to its group after 40 s), then every
    process left on that data dir is killed."""
    data_dir = tmp / "data"
    api_port, prefect_port = free_port(), free_port()
    log = tmp / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*FIBERFLOW, "up", "--api-port", str(api_port), "--prefect-port", str(prefect_port),
             "--data-dir", str(data_dir)],
            env=stack_env(data_dir, **env_extra), stdout=out, stderr=subprocess.STDOUT,
            cwd=tmp, start_new_session=True,
        )  # fmt: skip
    stack = RunningStack(proc, data_dir, api_port, prefect_port, log)
    try:
        yield stack
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for p in processes_of(data_dir):
            p.kill()


def _pg_admin() -> Engine:
    return create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )


def postgres_available() -> bool:
    try:
        with _pg_admin().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@contextmanager
def throwaway_pg_database(prefix: str = "fiberflow_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on ``PG_ADMIN_URL``'s server (its plain
    postgresql:// URL), dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
