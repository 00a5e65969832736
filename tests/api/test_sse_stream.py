"""api/sse_stream.py: the per-process pieces every SSE connection shares (the streams
themselves run against a real uvicorn in tests/api/test_realtime.py)."""

from __future__ import annotations

import asyncio

from sse_starlette import ServerSentEvent

from fiberflow.api.sse_stream import ConnectionLimiter, Heartbeats
from fiberflow.api.sse_wire import WireCache
from fiberflow.events.record import EventRecord
from tests.api.sse import WAIT


async def test_heartbeats_ticker_reaches_every_stream_and_spreads_them() -> None:
    """One ticker for the process: every registered stream is pinged once per interval,
    by groups; a stream that left is not pinged any more."""

    class Stream:
        def __init__(self) -> None:
            self.beats = 0

        def heartbeat(self) -> None:
            self.beats += 1

    beats = Heartbeats(interval=0.2, groups=4)
    streams = [Stream() for _ in range(10)]
    groups = [beats.add(s) for s in streams]  # type: ignore[arg-type]
    assert sorted(set(groups)) == [0, 1, 2, 3] and len(beats) == 10
    gone = streams.pop()
    beats.discard(gone, groups.pop())  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(WAIT):
            while min(s.beats for s in streams) < 3:
                await asyncio.sleep(0.01)
    finally:
        await beats.stop()
    assert gone.beats == 0 and len(beats) == 9
    # Once per interval each: no stream is more than a turn ahead of another.
    assert max(s.beats for s in streams) - min(s.beats for s in streams) <= 1


def test_connection_limiter_caps_per_tenant_and_frees_slots() -> None:
    limiter = ConnectionLimiter(cap=2)
    assert limiter.acquire("t1") and limiter.acquire("t1")
    assert not limiter.acquire("t1")  # at the cap
    assert limiter.acquire("t2")  # other tenants unaffected
    limiter.release("t1")
    assert limiter.open("t1") == 1 and limiter.acquire("t1")
    for _ in range(3):
        limiter.release("t1")
    assert limiter.open("t1") == 0  # never negative


def _record(event_id: int) -> EventRecord:
    return EventRecord(
        id=event_id,
        service_id="s1",
        tenant_id="t1",
        operation_id=None,
        event_type="service.provisioning.progress",
        data={"step": 1, "status": "validating", "message": "a\nb"},
    )


def test_wire_cache_encodes_once_per_event_as_sse_starlette_does() -> None:
    cache = WireCache(size=8)
    first = cache.get(_record(7), "\r\n")
    expected = ServerSentEvent(
        data='{"step":1,"status":"validating","message":"a\\nb"}',
        event="service.provisioning.progress",
        id="7",
        sep="\r\n",
    ).encode()
    assert first == expected
    assert cache.get(_record(7), "\r\n") is first  # the same bytes object: not rebuilt
    assert cache.get(_record(7), "\n") == expected.replace(b"\r\n", b"\n")


def test_wire_cache_stays_bounded() -> None:
    cache = WireCache(size=8)
    for i in range(100):
        cache.get(_record(i), "\r\n")
    assert len(cache._bytes) <= 8
    assert cache.get(_record(99), "\r\n").startswith(b"id: 99")


def test_wire_cache_never_serves_another_event_under_a_reused_id() -> None:
    cache = WireCache(size=8)
    cache.get(_record(7), "\r\n")
    other = EventRecord(
        id=7,
        service_id="s2",
        tenant_id="t2",
        operation_id=None,
        event_type="service.termination.completed",
        data={"completed_at": "2026-11-28T00:00:00Z"},
    )
    wire = cache.get(other, "\r\n")
    assert b"service.termination.completed" in wire and b"validating" not in wire
