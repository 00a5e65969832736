"""One load run: ``fiberflow up`` in a subprocess, the baseline, then the load while a
sampler watches the API process and Prefect; what it measured."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.lifecycle_load import Run, RunProcesses, orders
from bench.lifecycle_throughput import MIN_AVAILABLE_GIB, TENANT, set_latency
from bench.load_arrivals import Load, baseline, drive
from bench.load_check import Verdict, check_listener
from bench.report import load_average
from bench.sampling import BackgroundSampler
from fiberflow.core.tokens import issue
from fiberflow.lab.harness import running_stack, wait_healthy


@dataclass
class Sampler(BackgroundSampler):
    """Every second: the API process (and children) CPU and RSS, the load average, the
    memory available, and flows in flight as the Prefect API sees them (RUNNING)."""

    thread_name = "load-sampler"

    api_pid: int
    prefect_api: str
    cpu_pct: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    load_1m: list[float] = field(default_factory=list)
    available_gib: list[float] = field(default_factory=list)
    prefect_running: list[int] = field(default_factory=list)
    api_cpu_s: float = 0.0
    wall_s: float = 0.0

    @staticmethod
    def _procs(pid: int) -> list[psutil.Process]:
        try:
            p = psutil.Process(pid)
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return []

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _loop(self) -> None:
        body = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}
        t0 = last_t = time.monotonic()
        cpu0 = last_cpu = self._cpu(self._procs(self.api_pid))
        with httpx.Client(base_url=self.prefect_api, timeout=5) as prefect:
            while not self._stop.wait(1.0):
                procs = self._procs(self.api_pid)
                cpu, now = self._cpu(procs), time.monotonic()
                self.cpu_pct.append(100 * (cpu - last_cpu) / max(1e-6, now - last_t))
                self.api_cpu_s, self.wall_s = cpu - cpu0, now - t0
                last_cpu, last_t = cpu, now
                rss = 0.0
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss / 2**20
                self.rss_mb.append(rss)
                self.load_1m.append(os.getloadavg()[0])
                self.available_gib.append(psutil.virtual_memory().available / 2**30)
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    resp = prefect.post("/flow_runs/count", json=body)
                    self.prefect_running.append(int(resp.json()))


@dataclass
class Measured:
    baseline: list[Run]
    load: Load
    verdicts: dict[int, Verdict]
    histories: dict[str, list[dict[str, Any]]]
    final_status: dict[str, str]
    sampler: Sampler
    procs: RunProcesses
    startup: float
    devices: int
    wall: float
    load_avg: str


def measure(args: argparse.Namespace, tmp: Path) -> Measured:
    env = {
        "FIBERFLOW_SSE_MAX_CONNECTIONS_PER_TENANT": str(args.sse_clients + args.workflows + 100),
        "FIBERFLOW_CREATE_RATE_PER_MINUTE": "0",
    }
    with running_stack(tmp, **env) as stack:
        t0 = time.monotonic()
        wait_healthy(stack.api_url, stack.proc, timeout=300)
        startup = time.monotonic() - t0
        info = stack.info()
        key = (stack.data_dir / "dev-jwt-secret").read_text().strip()
        token = issue(key, tenant_id=TENANT, role="operator", sub="bench", ttl=timedelta(hours=3))
        devices = set_latency(stack.data_dir, args.latency)
        stop = threading.Event()

        def low_memory() -> None:
            stop.set()
            stack.proc.send_signal(signal.SIGTERM)

        bodies = orders(args.workflows + 1)
        base = asyncio.run(baseline(stack.api_url, token, bodies.pop(0), stop))
        window = args.minutes * 60
        load = Load(
            stack.api_url,
            token,
            args.workflows,
            window,
            args.sse_clients,
            time.time() + window + args.timeout,
            stop,
            bodies,
        )
        procs = RunProcesses([info["children"]["worker"]], MIN_AVAILABLE_GIB, low_memory)
        sampler = Sampler(info["children"]["api"], info["prefect_api_url"])
        load_avg = load_average()
        procs.start()
        sampler.start()
        t1 = time.time()
        try:
            histories, final = asyncio.run(drive(load, args.drain))
        finally:
            wall = max((r.ended_rx or 0 for r in load.runs), default=time.time()) - t1
            sampler.stop()
            procs.stop()
    verdicts = {
        lst.index: check_listener(lst, histories.get(lst.service_id, [])) for lst in load.listeners
    }
    return Measured(
        base, load, verdicts, histories, final, sampler, procs, startup, devices, wall, load_avg
    )
