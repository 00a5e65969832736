"""Servers a benchmark starts for itself on loopback: Redis, a migrated SQLite database,
uvicorn apps. Children lead their own process group and die with the benchmark
(stack.procs.Supervisor); ``stop_all`` ends them."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import httpx
import psutil
import redis

from fiberflow.core.db.migrate import upgrade
from fiberflow.stack.procs import Child, Supervisor, free_port
from fiberflow.stack.redis_server import redis_binary

REPO = Path(__file__).resolve().parents[1]


class BenchError(RuntimeError):
    """A part of the benchmark's set-up failed."""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIBERFLOW_", "PREFECT_"))}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def wait_for(what: str, probe: object, timeout: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise BenchError(f"{what} exited early:\n{child.tail(30)}")
        try:
            if probe():  # type: ignore[operator]
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.05)
    raise BenchError(f"{what} not ready within {timeout:.0f} s")


class Servers:
    """Everything one benchmark run starts, under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.sup = Supervisor(workdir / "logs")
        self.jwt_key = secrets.token_urlsafe(48)

    def redis(self, name: str = "redis") -> str:
        """A redis-server of our own (no persistence: events are in the database)."""
        port = free_port()
        rdir = self.workdir / name
        rdir.mkdir(exist_ok=True)
        argv = [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(rdir),
            "--maxclients",
            "20000",
        ]
        child = self.sup.start(name, argv)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            wait_for(name, client.ping, 20, child)
        finally:
            client.close()
        return url

    def sqlite(self, name: str = "bench.db") -> str:
        url = f"sqlite:///{self.workdir / name}"
        upgrade(url)
        return url

    def uvicorn(self, name: str, app: str, env: dict[str, str]) -> tuple[Child, str]:
        """``python -m uvicorn <app> --factory`` (uvloop + httptools when installed, as
        ``fiberflow api``); returns the child and its base URL once it answers."""
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--backlog",
            "8192",
            "--timeout-graceful-shutdown",
            "3",
        ]
        child = self.sup.start(name, argv, env=clean_env(**env))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            return httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503)

        wait_for(name, answers, 60, child)
        return child, url

    def stop(self, child: Child) -> None:
        """Stop one child (its process group), bounded."""
        if child in self.sup.children:
            self.sup.children.remove(child)
        one = Supervisor(self.sup.log_dir, [child])
        one.stop_all(timeout=10)

    def stop_all(self) -> None:
        self.sup.stop_all(timeout=10)


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20
