"""api/sse_stream.py: the per-process pieces every SSE connection shares (the streams
themselves run against a real uvicorn in tests/api/test_realtime.py)."""

from __future__ import annotations

import asyncio

from api.sse_stream import ConnectionLimiter, Heartbeats
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
