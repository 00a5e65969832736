"""Publishing for the SSE benchmark: services in the database, events at a fixed rate
through the real publisher (EventPublisher.publish: event_log row, then XADD), and the
floor (raw XADD to one redis-py reader in another process)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fiberflow.core.db.models import ServiceInstance
from fiberflow.core.tokens import issue
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.publisher import EventPublisher
from fiberflow.events.schema import progress

STATUSES = ("validating", "allocating", "configuring", "activating", "testing")


@dataclass
class Fleet:
    """S services spread over T tenants, with one operator token per tenant."""

    services: list[tuple[str, str]]  # (service_id, tenant_id)
    tokens: dict[str, str]  # tenant_id -> JWT
    operation_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, engine: Engine, jwt_key: str, services: int, tenants: int) -> Fleet:
        tenant_ids = [str(uuid.uuid4()) for _ in range(tenants)]
        rows = []
        with Session(engine) as s, s.begin():
            for i in range(services):
                row = ServiceInstance(
                    tenant_id=tenant_ids[i % tenants],
                    customer_ref=f"bench-{i}",
                    plan="100M",
                    olt="olt-1",
                    pon_port="0/1/1",
                    ont_serial=uuid.uuid4().hex[:16].upper(),
                    status="provisioning",
                )
                s.add(row)
                rows.append(row)
            s.flush()
            pairs = [(r.id, r.tenant_id) for r in rows]
        tokens = {
            t: issue(jwt_key, tenant_id=t, role="operator", sub="bench", ttl=timedelta(hours=2))
            for t in tenant_ids
        }
        return cls(pairs, tokens, {sid: str(uuid.uuid4()) for sid, _ in pairs})

    def connections(self, clients: int) -> list[tuple[str, str]]:
        """Connection j follows service j mod S, with its tenant's token."""
        out = []
        for j in range(clients):
            sid, tenant = self.services[j % len(self.services)]
            out.append((sid, self.tokens[tenant]))
        return out


class TimedRedis(redis.Redis):
    """The publisher's Redis client, noting when each pipeline (the XADD) is sent."""

    sent_at = 0.0

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def timed_execute(raise_on_error: bool = True) -> Any:
            self.sent_at = time.time()
            return execute(raise_on_error)

        pipe.execute = timed_execute  # type: ignore[method-assign]
        return pipe


@dataclass
class Published:
    expect: dict[str, int]
    count: int
    seconds: float
    publish_ms: list[float]
    #: event id -> seconds from the publisher's clock reading to sending the XADD
    to_xadd: dict[int, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Achieved events/s (first to last event)."""
        return (self.count - 1) / self.seconds if self.seconds > 0 and self.count > 1 else 0.0


def publish_events(
    engine: Engine,
    redis_url: str,
    fleet: Fleet,
    run: str,
    events: int,
    rate: float,
    pubsub_channel: str | None = None,
) -> Published:
    """``events`` events at ``rate``/s, round-robin over the fleet, through
    EventPublisher.publish (coalescing off: every event is stored and sent). With
    ``pubsub_channel`` each event is also PUBLISHed there (the replaced design's path)."""
    # connect_sync's options, on a client that notes when the XADD leaves.
    timed: TimedRedis = TimedRedis.from_url(  # type: ignore[assignment]
        redis_url, socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 1)
    )
    publisher = EventPublisher(engine, timed, coalescer=Coalescer(0))
    plain = redis.Redis.from_url(redis_url) if pubsub_channel else None
    expect: dict[str, int] = {}
    durations = []
    to_xadd: dict[int, float] = {}
    start = last = time.monotonic()
    try:
        for n in range(events):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            last = time.monotonic()
            sid, tenant = fleet.services[n % len(fleet.services)]
            t0 = time.time()
            event = progress(
                "provisioning",
                service_id=sid,
                tenant_id=tenant,
                operation_id=fleet.operation_ids[sid],
                step=n % 5 + 1,
                total_steps=6,
                status=STATUSES[n % 5],
                message=f"bench event {n}",
                bench_t=t0,
                bench_run=run,
            )
            event_id = publisher.publish(event)
            if event_id is not None:
                to_xadd[event_id] = timed.sent_at - t0
            if plain is not None and pubsub_channel is not None:
                plain.publish(
                    pubsub_channel,
                    json.dumps(
                        {
                            "id": event_id,
                            "service_id": sid,
                            "event_type": event.event_type,
                            "data": event.data(),
                        }
                    ),
                )
            durations.append((time.time() - t0) * 1000)
            expect[sid] = expect.get(sid, 0) + 1
        seconds = last - start  # first to last publish
    finally:
        publisher.close()
        if plain is not None:
            plain.close()
    return Published(expect, events, seconds, durations, to_xadd)


# -- the floor: raw XADD -> one redis-py reader ------------------------------------------
def _floor_reader(url: str, stream: str, n: int, timeout: float, conn: Connection) -> None:
    async def read() -> list[float]:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url, socket_timeout=5)
        latencies: list[float] = []
        last = "0-0"
        deadline = time.monotonic() + timeout
        conn.send("ready")
        try:
            while len(latencies) < n and time.monotonic() < deadline:
                response: Any = await client.xread({stream: last}, count=1000, block=500)
                now = time.time()
                for _stream, entries in response or []:
                    for entry_id, fields in entries:
                        last = entry_id
                        latencies.append(now - float(fields[b"t"]))
        finally:
            await client.aclose()
        return latencies

    try:
        import uvloop

        result = uvloop.run(read())
    except ImportError:
        result = asyncio.run(read())
    conn.send(result)


def floor(
    redis_url: str, events: int, rate: float, timeout: float = 60
) -> tuple[list[float], float]:
    """Latencies (seconds) of ``events`` raw XADDs at ``rate``/s read by one reader."""
    stream = f"bench:floor:{uuid.uuid4().hex}"
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    reader = ctx.Process(target=_floor_reader, args=(redis_url, stream, events, timeout, child))
    reader.start()
    client = redis.Redis.from_url(redis_url)
    try:
        if not parent.poll(30):
            raise RuntimeError("floor reader did not start")
        parent.recv()
        time.sleep(0.2)  # the reader's first XREAD is blocking
        payload = json.dumps({"message": "x" * 200})
        start = last = time.monotonic()
        for n in range(events):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            last = time.monotonic()
            client.xadd(stream, {"t": repr(time.time()), "id": n, "data": payload})
        seconds = last - start
        latencies: list[float] = parent.recv() if parent.poll(timeout) else []
    finally:
        reader.join(10)
        if reader.is_alive():
            reader.kill()
        client.delete(stream)
        client.close()
    return latencies, (events - 1) / seconds if seconds > 0 and events > 1 else 0.0
