"""The load benchmark's SSE listeners: each follows one service's lifecycle stream,
connecting at once, late (a catch-up) or dropping mid-run and resuming with
``Last-Event-ID`` as a browser does, and records every event id it gets."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from bench.lifecycle_load import STREAM

#: listener modes by index mod 20: 12 connect at once, 5 late, 3 reconnect mid-run
MODES = tuple(
    "reconnect" if j in (1, 8, 15) else "late" if j in (3, 6, 10, 13, 17) else "now"
    for j in range(20)
)
LATE_S = (1.0, 15.0)  # a late listener connects this long after its arrival's 202
DROP_S = (1.0, 10.0)  # a reconnecting one drops its first connection this long after
MAX_CONNECTIONS_PER_LISTENER = 6


@dataclass
class Connection:
    sent: float  # time.time() when the request went
    last_event_id: int | None
    ready: float | None = None  # headers received
    ended: str | None = None  # why it ended early ("closed", an error), None = we closed it


@dataclass
class Listener:
    """One SSE client of one service; ``ids`` in the order received (duplicates kept)."""

    index: int
    service_id: str
    mode: str
    connect_at: float
    disconnect_at: float | None = None
    ids: list[int] = field(default_factory=list)
    #: receipt - event timestamp, for events stamped after their connection was ready
    live_latency: list[float] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def event_time(data: dict[str, Any]) -> float | None:
    """The event's own timestamp (as the publisher stamped it), in time.time() seconds."""
    for key in ("timestamp", "completed_at", "failed_at"):
        if isinstance(data.get(key), str):
            return datetime.fromisoformat(data[key].replace("Z", "+00:00")).timestamp()
    return None


async def _read(client: httpx.AsyncClient, lst: Listener, conn: Connection) -> None:
    headers = {} if conn.last_event_id is None else {"Last-Event-ID": str(conn.last_event_id)}
    timeout = httpx.Timeout(10, read=None)  # heartbeats keep it alive; we cancel at the end
    async with aconnect_sse(
        client, "GET", STREAM.format(lst.service_id), headers=headers, timeout=timeout
    ) as source:
        resp = source.response
        if resp.status_code != 200:
            body = (await resp.aread()).decode(errors="replace")[:200]
            raise RuntimeError(f"HTTP {resp.status_code}: {body}")
        conn.ready = time.time()
        async for sse in source.aiter_sse():
            if not sse.data:
                continue
            now = time.time()
            lst.ids.append(int(sse.id))
            stamped = event_time(sse.json())
            if stamped is not None and stamped >= conn.ready:
                lst.live_latency.append(now - stamped)
    conn.ended = "closed by the server"


async def _planned_drop(lst: Listener) -> None:
    """Returns once the planned disconnect time has passed and an event has arrived
    (so the reconnect has a Last-Event-ID to send)."""
    assert lst.disconnect_at is not None
    while time.time() < lst.disconnect_at or not lst.ids:
        await asyncio.sleep(0.2)


async def listen(client: httpx.AsyncClient, lst: Listener, rng: random.Random) -> None:
    """Connect at ``connect_at``; reconnect (``Last-Event-ID``, as a browser) after a
    planned drop or when the server ends the stream; runs until cancelled."""
    await asyncio.sleep(max(0.0, lst.connect_at - time.time()))
    while len(lst.connections) < MAX_CONNECTIONS_PER_LISTENER:
        conn = Connection(time.time(), lst.ids[-1] if lst.ids else None)
        lst.connections.append(conn)
        read = asyncio.create_task(_read(client, lst, conn))
        waits: set[asyncio.Task[None]] = {read}
        if lst.disconnect_at is not None and len(lst.connections) == 1:
            waits.add(asyncio.create_task(_planned_drop(lst)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in waits:
                t.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if read.done() and not read.cancelled() and read.exception() is not None:
            exc = read.exception()
            conn.ended = f"{type(exc).__name__}: {exc}"[:200]
            lst.errors.append(conn.ended)
        await asyncio.sleep(rng.uniform(0.2, 2.0) if conn.ended is None else 1.0)
