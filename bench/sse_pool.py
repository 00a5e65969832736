"""The orchestrator's side of the SSE client pool: several ``bench.sse_client`` processes,
each holding a share of the connections, driven over their stdin/stdout."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.servers import REPO, BenchError, clean_env

STREAM_PATH = "/api/v1/realtime/service-lifecycle/{}"


def _readline(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"SSE client {proc.pid} did not answer within {timeout:.0f} s")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise BenchError(f"SSE client {proc.pid} exited ({proc.poll()})")
            result: dict[str, Any] = json.loads(line)
            return result


@dataclass
class ClientPool:
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    outs: list[Path] = field(default_factory=list)
    ready: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    client_cpu_pct: float = 0.0

    @classmethod
    def start(
        cls,
        workdir: Path,
        base_urls: list[str],
        conns: list[tuple[str, str]],
        run: str,
        procs: int,
        connect_timeout: float,
    ) -> ClientPool:
        """Start ``procs`` client processes sharing ``conns`` [(service_id, token)] and
        wait until each has connected its share (or given up). Process k talks to
        ``base_urls[k mod len]`` (at least one process per URL)."""
        procs = max(procs, len(base_urls))
        pool = cls()
        for k in range(procs):
            share = conns[k::procs]
            if not share:
                continue
            host, port = base_urls[k % len(base_urls)].removeprefix("http://").split(":")
            out = workdir / f"client-{run}-{k}"
            spec = {
                "host": host,
                "port": int(port),
                "path": STREAM_PATH,
                "run": run,
                "conns": share,
                "out": str(out),
                "connect_timeout": connect_timeout,
                "connect_concurrency": 100,
            }
            spec_path = out.with_suffix(".json")
            spec_path.write_text(json.dumps(spec))
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.sse_client", str(spec_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=(workdir / f"client-{run}-{k}.log").open("wb"),
                env=clean_env(),
                cwd=REPO,
                text=True,
            )
            pool.procs.append(proc)
            pool.outs.append(out)
        try:
            for proc in pool.procs:
                hello = _readline(proc, connect_timeout + 30)
                pool.ready += hello["ready"]
                pool.failed += hello["failed"]
                for k, v in hello["errors"].items():
                    pool.errors[k] = pool.errors.get(k, 0) + v
        except BaseException:
            pool.kill()
            raise
        return pool

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def finish(
        self, expect: dict[str, int], drain: float
    ) -> tuple[dict[str, int], array[float], array[int]]:
        """Tell the clients what to expect, wait for their counts; returns the summed
        counts, every latency (seconds) and its event id. ``client_cpu_pct`` is set to the busiest
        client process's CPU use (% of a core) from the order to its answer."""
        order = json.dumps({"expect": expect, "drain": drain}) + "\n"
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(order)
            proc.stdin.flush()
        totals: dict[str, int] = {}
        latencies: array[float] = array("d")
        ids: array[int] = array("q")
        try:
            for proc, out in zip(self.procs, self.outs, strict=True):
                answer = _readline(proc, drain + 60)
                done = answer["done"]
                busy = answer["cpu_s"] / max(answer["wall_s"], 1e-6) * 100
                self.client_cpu_pct = max(self.client_cpu_pct, busy)
                for k, v in done.items():
                    totals[k] = totals.get(k, 0) + v
                with open(f"{out}.lat", "rb") as f:
                    latencies.frombytes(f.read())
                with open(f"{out}.ids", "rb") as f:
                    ids.frombytes(f.read())
        finally:
            self.kill()
        return totals, latencies, ids

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class CpuSampler:
    """CPU seconds and peak RSS of some processes between ``start()`` and ``stop()``."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.t0 = 0.0
        self.cpu0: list[float] = []

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = [self._cpu(p) for p in self.procs]

    def stop(self) -> tuple[float, list[float]]:
        """(wall seconds, CPU seconds per process)."""
        wall = time.monotonic() - self.t0
        return wall, [self._cpu(p) - c for p, c in zip(self.procs, self.cpu0, strict=True)]


def default_procs(clients: int) -> int:
    """One client process per 2,500 connections, at most one per core."""
    return max(1, min(os.cpu_count() or 1, -(-clients // 2500)))
