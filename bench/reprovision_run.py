"""Bulk reprovisioning's runs: ``fiberflow up`` in a subprocess, seeded and drifted,
then each deployment run triggered through Prefect and sampled while it runs."""

from __future__ import annotations

import argparse
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.report import load_average
from bench.reprovision_drift import DRIFT_KINDS, apply_drift, verify
from bench.reprovision_outcomes import RunFigures, high_water, iso_ts, outcomes_since
from bench.reprovision_seed import Lab, Svc, plan_services, seed_database, seed_lab
from bench.sampling import BackgroundSampler
from fiberflow.devices.inventory import load_inventory
from fiberflow.lab.harness import running_stack, wait_healthy

MIN_AVAILABLE_GIB = 3.0  # below this the benchmark stops the stack (shared machine)
# The nightly deployment runs the fleet drift check (flows/drift_check.py): services in
# sync get no run and no event, so they count as "not run" in the outcomes here.
BULK = "drift-check/reprovision-nightly"
ONE = "reprovision/reprovision"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Sampler(BackgroundSampler):
    """Every 0.5 s: the worker's descendants (CPU, RSS, threads per pid) and available
    memory; below the floor it stops the stack."""

    worker_pid: int
    on_low_memory: Any
    cpu_s: dict[int, float] = field(default_factory=dict)
    rss_mb: dict[int, float] = field(default_factory=dict)
    threads: dict[int, int] = field(default_factory=dict)
    low_memory: bool = False
    min_available_gib: float = MIN_AVAILABLE_GIB

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(5)

    def _loop(self) -> None:
        try:
            worker = psutil.Process(self.worker_pid)
        except psutil.Error:
            return
        while not self._stop.wait(0.5):
            try:
                procs = worker.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    with p.oneshot():
                        t, rss, nt = p.cpu_times(), p.memory_info().rss, p.num_threads()
                except psutil.Error:
                    continue
                self.cpu_s[p.pid] = t.user + t.system
                self.rss_mb[p.pid] = max(self.rss_mb.get(p.pid, 0.0), rss / 2**20)
                self.threads[p.pid] = max(self.threads.get(p.pid, 0), nt)
            if psutil.virtual_memory().available / 2**30 < self.min_available_gib:
                self.low_memory = True
                self.on_low_memory()
                return


class Stack:
    """What a run needs of the running stack."""

    def __init__(self, data_dir: Path, info: dict[str, Any], stop: threading.Event) -> None:
        self.data_dir = data_dir
        self.info = info
        self.api = str(info["prefect_api_url"])
        self.database_url = str(info["database_url"])
        self.lab = Lab(data_dir)
        self.stop = stop
        self.http = httpx.Client(base_url=self.api, timeout=30)

    def set_latency(self, latency: float) -> None:
        self.lab.all("faults", latency=latency)

    def start(self, deployment: str, parameters: dict[str, Any]) -> str:
        dep = self.http.get(f"/deployments/name/{deployment}")
        dep.raise_for_status()
        resp = self.http.post(
            f"/deployments/{dep.json()['id']}/create_flow_run", json={"parameters": parameters}
        )
        resp.raise_for_status()
        return str(resp.json()["id"])

    def wait(self, flow_run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        for _ in range(int(timeout / 0.5) + 2):  # bounded in count and in time
            run = self.http.get(f"/flow_runs/{flow_run_id}").json()
            if (run.get("state") or {}).get("type") in TERMINAL:
                return run
            if time.monotonic() > deadline or self.stop.is_set():
                break
            time.sleep(0.5)
        return run

    def stack_cpu(self) -> dict[str, float]:
        out = {}
        for name, pid in self.info.get("children", {}).items():
            try:
                t = psutil.Process(int(pid)).cpu_times()
            except psutil.Error:
                continue
            out[name] = t.user + t.system
        return out


def one_run(
    stack: Stack,
    label: str,
    latency: float,
    services: list[Svc],
    deployment: str,
    parameters: dict[str, Any],
    timeout: float,
    low_memory: Any,
) -> tuple[RunFigures, Sampler]:
    stack.set_latency(latency)
    stack.lab.all("reset_counters")
    marks = high_water(stack.database_url)
    cpu0 = stack.stack_cpu()
    load = load_average()
    with Sampler(int(stack.info["children"]["worker"]), low_memory) as sampler:
        triggered = time.time()
        run_id = stack.start(deployment, parameters)
        run = stack.wait(run_id, timeout)
        finished = time.time()
    cpu1 = stack.stack_cpu()
    ids = [s.id for s in services]
    outcomes, pids = outcomes_since(stack.database_url, marks, ids)
    counters = stack.lab.all("counters")
    pid = next(iter(pids)) if len(pids) == 1 else None
    start, end = run.get("start_time"), run.get("end_time")
    figures = RunFigures(
        label=label,
        latency=latency,
        services=len(services),
        flow_run_id=run_id,
        state=str((run.get("state") or {}).get("type", "unknown")),
        triggered=triggered,
        finished=finished,
        prefect_start=iso_ts(start) if start else None,
        prefect_end=iso_ts(end) if end else None,
        outcomes=outcomes,
        lab=counters,
        run_pid=pid,
        run_cpu_s=sampler.cpu_s.get(pid) if pid else None,
        run_rss_mb=sampler.rss_mb.get(pid) if pid else None,
        run_threads=sampler.threads.get(pid) if pid else None,
        stack_cpu_s={k: cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0},
        load=load,
    )
    return figures, sampler


@dataclass
class Measured:
    runs: list[RunFigures]
    services: list[Svc]
    seed_s: float
    drifted_bad: dict[str, list[str]]
    low_memory: bool
    errors: list[str]


def measure(args: argparse.Namespace, tmp: Path) -> Measured:
    stop = threading.Event()
    runs: list[RunFigures] = []
    errors: list[str] = []
    with running_stack(tmp) as up:
        wait_healthy(up.api_url, up.proc, timeout=300)

        def low_memory() -> None:
            stop.set()
            up.proc.send_signal(signal.SIGTERM)

        stack = Stack(up.data_dir, up.info(), stop)
        inv = load_inventory(stack.lab.inventory_path)
        t0 = time.monotonic()
        services = plan_services(args.services, inv)
        seed_database(stack.database_url, inv, services)
        seed_lab(stack.lab, services)
        seed_s = time.monotonic() - t0
        if bad := verify(stack.lab, stack.database_url, services):
            raise RuntimeError(f"seeding left {len(bad)} inconsistent: {list(bad.items())[:3]}")
        k = round(len(services) * args.drift)
        rng = random.Random(args.seed)
        for n, svc in enumerate(rng.sample(services, k)):
            svc.drift = DRIFT_KINDS[n % len(DRIFT_KINDS)]
        drifted = [s for s in services if s.drift]
        apply_drift(stack.lab, stack.database_url, drifted)
        drifted_bad = verify(stack.lab, stack.database_url, services)

        def bulk(label: str, latency: float) -> None:
            f, sampler = one_run(stack, label, latency, services, BULK, {}, args.timeout,
                                 low_memory)  # fmt: skip
            f.bad_after = verify(stack.lab, stack.database_url, services)
            runs.append(f)

        n, pct = len(services), args.drift * 100
        bulk(f"{n:,} services, {len(drifted)} drifted ({pct:.0f} %), "
             f"latency {args.latency:g} s", args.latency)  # fmt: skip
        if not stop.is_set():  # baselines: one service alone, in sync then drifted
            in_sync = next(s for s in services if not s.drift)
            alone = [(in_sync, "in sync")] + [(drifted[0], "drifted")] * bool(drifted)
            for svc, what in alone:
                if stop.is_set():
                    break
                apply_drift(stack.lab, stack.database_url, [svc])
                f, _ = one_run(stack, f"1 service alone ({what}), latency {args.latency:g} s",
                               args.latency, [svc], ONE, {"service_id": svc.id}, 300,
                               low_memory)  # fmt: skip
                f.bad_after = verify(stack.lab, stack.database_url, [svc])
                runs.append(f)
        if args.floor and args.latency > 0 and not stop.is_set():
            apply_drift(stack.lab, stack.database_url, drifted)
            bulk(f"same {n:,} services and drift, latency 0 (orchestration floor)", 0.0)
        for f in runs:
            if f.state != "COMPLETED":
                errors.append(f"{f.label}: flow run {f.flow_run_id} ended {f.state}")
            if f.bad_after:
                sample = list(f.bad_after.items())[:3]
                errors.append(f"{f.label}: {len(f.bad_after)} services still differ: {sample}")
    return Measured(runs, services, seed_s, drifted_bad, stop.is_set(), errors)
