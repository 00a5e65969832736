"""SSE listeners of one bulk run (``GET /api/v1/realtime/bulk/{id}``), as operators'
browsers: each connects once, reads until ``bulk.completed`` and records every event id
it got, in order, duplicates kept. They run on an event loop of their own, in a thread,
while the benchmark drives the batch."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import aconnect_sse

STREAM = "/api/v1/realtime/bulk/{bulk_id}"


@dataclass
class Listener:
    index: int
    ids: list[int] = field(default_factory=list)
    connected: bool = False
    completed: bool = False
    error: str | None = None


@dataclass
class Listeners:
    """``count`` listeners of ``bulk_id`` on ``api_url``; ``start()``, then ``join()``."""

    api_url: str
    headers: dict[str, str]
    bulk_id: str
    count: int
    timeout: float
    listeners: list[Listener] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self, connect_timeout: float = 120.0) -> None:
        self.listeners = [Listener(i) for i in range(self.count)]
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        # Every one connected (or failed) before the batch may start.
        self._ready.wait(connect_timeout)

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(self.timeout + 60)

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.count + 10)
        timeout = httpx.Timeout(30.0, read=120.0)  # heartbeats come every 15 s
        async with httpx.AsyncClient(base_url=self.api_url, headers=self.headers,
                                     limits=limits, timeout=timeout) as client:  # fmt: skip
            connected = [asyncio.Event() for _ in self.listeners]
            tasks = [asyncio.create_task(self._listen(client, lst, ev))
                     for lst, ev in zip(self.listeners, connected, strict=True)]  # fmt: skip
            await asyncio.gather(*(ev.wait() for ev in connected))
            self._ready.set()
            await asyncio.wait(tasks, timeout=self.timeout)
            for task in tasks:
                task.cancel()

    async def _listen(self, client: httpx.AsyncClient, lst: Listener, ready: asyncio.Event) -> None:
        url = STREAM.format(bulk_id=self.bulk_id)
        try:
            async with aconnect_sse(client, "GET", url) as source:
                source.response.raise_for_status()
                lst.connected = True
                ready.set()
                async for sse in source.aiter_sse():
                    if not sse.data:  # a heartbeat
                        continue
                    lst.ids.append(int(sse.id))
                    if sse.event == "bulk.completed":
                        lst.completed = True
                        return
        except Exception as exc:  # counted, never raised: the batch goes on
            lst.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            ready.set()

    def summary(self, expected: list[int]) -> dict[str, Any]:
        """What the listeners got against the bulk's events in the event log."""
        want = set(expected)
        got = [lst.ids for lst in self.listeners]
        return {
            "listeners": self.count,
            "connected": sum(lst.connected for lst in self.listeners),
            "completed": sum(lst.completed for lst in self.listeners),
            "expected_per_listener": len(expected),
            "delivered": sum(len(ids) for ids in got),
            "lost": sum(len(want - set(ids)) for ids in got),
            "duplicates": sum(len(ids) - len(set(ids)) for ids in got),
            "out_of_order": sum(ids != sorted(ids) for ids in got),
            "foreign": sum(len(set(ids) - want) for ids in got),
            "errors": sorted({lst.error for lst in self.listeners if lst.error}),
            "at": time.time(),
        }
