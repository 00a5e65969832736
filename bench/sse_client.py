"""A pool of SSE client connections in one process (raw asyncio streams on uvloop, so the
client costs little per message): ``python -m bench.sse_client SPEC.json``.

Protocol with the orchestrator (one JSON object per line):

1. connects every connection of the spec (bounded concurrency, bounded time), then
   prints ``{"ready": n_ok, "failed": n, "errors": {...}}``;
2. reads ``{"expect": {service_id: n_events}, "drain": seconds}`` from stdin once the
   events are published, waits until every connection has its events (or the drain
   time is up), writes the latencies (float64 seconds) to ``<out>.lat`` and the event
   ids they belong to (int64) to ``<out>.ids``, and prints
   ``{"done": ...counts...}``.

Latency = receipt time (``time.time()`` when the bytes were read) minus the event's
``bench_t`` (the publisher's ``time.time()`` before it built the event).

The HTTP and SSE framing are parsed here by hand, not with httpx-sse (the SSE client
everywhere else): its public API reads an httpx response, which puts httpx's
connection pool, h11 and text decoding under each of the thousands of streams one
process holds here, and the client's own cost is what the fan-out measurement keeps
small; httpx-sse's incremental decoder is private (``httpx_sse._decoders``). The
relay's framing is fixed (``id``, ``event``, one ``data`` line, comments as
heartbeats), so little parsing is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Conn:
    service_id: str
    token: str
    ok: bool = False
    error: str | None = None
    ids: set[int] = field(default_factory=set)
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    foreign: int = 0
    last_id: int = 0
    closed_early: bool = False


class Pool:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.host: str = spec["host"]
        self.port: int = spec["port"]
        self.path_fmt: str = spec["path"]
        self.run: str = spec["run"]
        self.conns = [Conn(s, t) for s, t in spec["conns"]]
        self.connect_limit = asyncio.Semaphore(spec.get("connect_concurrency", 100))
        self.latencies = array("d")
        self.event_ids = array("q")
        self.progress = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def connect_all(self, timeout: float) -> None:
        ready = [asyncio.Event() for _ in self.conns]
        pairs = zip(self.conns, ready, strict=True)
        self.tasks = [asyncio.create_task(self._serve(c, e)) for c, e in pairs]
        waits = [asyncio.create_task(e.wait()) for e in ready]
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for w in pending:
            w.cancel()
        for c in self.conns:
            if not c.ok and c.error is None:
                c.error = "connect timeout"

    async def _serve(self, conn: Conn, ready: asyncio.Event) -> None:
        writer = None
        try:
            async with self.connect_limit:
                reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
                path = self.path_fmt.format(conn.service_id)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"Authorization: Bearer {conn.token}\r\nAccept: text/event-stream\r\n"
                    "Cache-Control: no-cache\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                if status != 200:
                    conn.error = f"HTTP {status}"
                    return
                chunked = b"transfer-encoding: chunked" in head.lower()
                conn.ok = True
            ready.set()
            await self._read(conn, reader, chunked)
            conn.closed_early = True
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            if conn.ok:
                conn.closed_early = True
            else:
                conn.error = type(exc).__name__
        finally:
            ready.set()
            if writer is not None:
                writer.close()

    async def _read(self, conn: Conn, reader: asyncio.StreamReader, chunked: bool) -> None:
        raw = bytearray()
        body = bytearray()
        while True:
            data = await reader.read(65536)
            if not data:
                return
            now = time.time()
            if chunked:
                raw += data
                while True:
                    eol = raw.find(b"\r\n")
                    if eol < 0:
                        break
                    size = int(raw[:eol], 16)
                    if size == 0:
                        return
                    end = eol + 2 + size
                    if len(raw) < end + 2:
                        break
                    body += raw[eol + 2 : end]
                    del raw[: end + 2]
            else:
                body += data
            text = bytes(body).replace(b"\r\n", b"\n")
            *messages, rest = text.split(b"\n\n")
            body = bytearray(rest)
            for message in messages:
                self._message(conn, message, now)

    def _message(self, conn: Conn, message: bytes, now: float) -> None:
        event_id = data = None
        for line in message.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].strip()
            elif line.startswith(b"id:"):
                event_id = int(line[3:].strip())
        if data is None or event_id is None:
            return  # a heartbeat comment
        payload = json.loads(data)
        if payload.get("service_instance_id") != conn.service_id:
            conn.foreign += 1
            return
        if payload.get("bench_run") != self.run:
            return  # not an event of this measurement
        if event_id in conn.ids:
            conn.duplicates += 1
            return
        if event_id < conn.last_id:
            conn.out_of_order += 1
        conn.ids.add(event_id)
        conn.last_id = max(conn.last_id, event_id)
        conn.received += 1
        self.latencies.append(now - float(payload["bench_t"]))
        self.event_ids.append(event_id)
        self.progress.set()

    async def drain(self, expect: dict[str, int], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        live = [c for c in self.conns if c.ok]
        while time.monotonic() < deadline:
            if all(c.received >= expect.get(c.service_id, 0) or c.closed_early for c in live):
                return
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), min(0.2, deadline - time.monotonic()))

    def summary(self, expect: dict[str, int]) -> dict[str, Any]:
        live = [c for c in self.conns if c.ok]
        return {
            "connections": len(live),
            "expected": sum(expect.get(c.service_id, 0) for c in live),
            "received": sum(c.received for c in live),
            "lost": sum(max(0, expect.get(c.service_id, 0) - c.received) for c in live),
            "duplicates": sum(c.duplicates for c in live),
            "out_of_order": sum(c.out_of_order for c in live),
            "foreign": sum(c.foreign for c in live),
            "closed_early": sum(1 for c in live if c.closed_early),
        }


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    pool = Pool(spec)
    await pool.connect_all(spec.get("connect_timeout", 120))
    errors: dict[str, int] = {}
    for c in pool.conns:
        if not c.ok:
            errors[c.error or "?"] = errors.get(c.error or "?", 0) + 1
    ok = sum(c.ok for c in pool.conns)
    _say({"ready": ok, "failed": len(pool.conns) - ok, "errors": errors})
    cpu0, wall0 = time.process_time(), time.monotonic()
    line = await asyncio.to_thread(sys.stdin.readline)
    order = json.loads(line or "{}")
    expect: dict[str, int] = order.get("expect", {})
    await pool.drain(expect, float(order.get("drain", 10)))
    with open(spec["out"] + ".lat", "wb") as f:
        pool.latencies.tofile(f)
    with open(spec["out"] + ".ids", "wb") as f:
        pool.event_ids.tofile(f)
    cpu = {"cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0}
    _say({"done": pool.summary(expect), **cpu})
    for t in pool.tasks:
        t.cancel()
    await asyncio.gather(*pool.tasks, return_exceptions=True)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # plain asyncio still works, only costs more CPU per message
        asyncio.run(main(sys.argv[1]))
    else:
        uvloop.run(main(sys.argv[1]))
