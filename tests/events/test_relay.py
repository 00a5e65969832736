"""Catch-up from the database + live from the hub: no loss, no duplicates."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.core.db.engine import session_factory
from fiberflow.core.db.models import EventLog
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.hub import EventHub
from fiberflow.events.publisher import EventPublisher, connect_sync
from fiberflow.events.record import EventRecord
from fiberflow.events.relay import ServiceStream
from tests.events.helpers import Workflow
from tests.fixtures.redis import RedisServer

WAIT = 15.0


async def service_events(
    hub: EventHub, sessions: sessionmaker[Session], service_id: str, last_event_id: int | None
) -> AsyncIterator[EventRecord]:
    """A ServiceStream as an async iterator; ends when the stream does."""
    stream = ServiceStream(hub, sessions, service_id, last_event_id)
    try:
        while True:
            try:
                record = await stream.next()
            except StopAsyncIteration:
                return
            if record is not None:
                yield record
    finally:
        stream.close()


async def take(stream: AsyncIterator[EventRecord], n: int) -> list[int]:
    return [(await asyncio.wait_for(anext(stream), WAIT)).id for _ in range(n)]


def publisher(engine: Engine, url: str, prefix: str) -> EventPublisher:
    return EventPublisher(engine, connect_sync(url), prefix, coalescer=Coalescer(0))


@pytest.fixture
async def hub(redis_url: str, redis_prefix: str) -> AsyncIterator[EventHub]:
    h = EventHub(redis_url, redis_prefix)
    await h.start()
    assert await h.wait_connected(WAIT)
    yield h
    await h.stop()


async def test_new_connection_gets_latest_operation_then_live(
    engine: Engine, hub: EventHub, redis_url: str, redis_prefix: str
) -> None:
    pub = publisher(engine, redis_url, redis_prefix)
    first = Workflow()
    for n in (1, 2):
        pub.publish(first.step(n))
    pub.publish(first.done())
    second = first.next_operation("suspension")
    current = [pub.publish(second.step(1)), pub.publish(second.step(2))]

    stream = service_events(hub, session_factory(engine), first.service_id, None)
    assert await take(stream, 2) == current
    live = await asyncio.to_thread(pub.publish, second.done())
    assert await take(stream, 1) == [live]
    await stream.aclose()
    assert hub.subscriber_count == 0


async def test_last_event_id_resumes_exactly_after_it(
    engine: Engine, hub: EventHub, redis_url: str, redis_prefix: str
) -> None:
    pub = publisher(engine, redis_url, redis_prefix)
    wf = Workflow()
    ids = [pub.publish(wf.step(n)) for n in range(1, 6)]
    stream = service_events(hub, session_factory(engine), wf.service_id, ids[1])
    assert await take(stream, 3) == ids[2:]
    later = await asyncio.to_thread(pub.publish, wf.done())
    assert await take(stream, 1) == [later]
    await stream.aclose()


async def test_events_landing_between_subscribe_and_query_come_once(
    engine: Engine, hub: EventHub, redis_url: str, redis_prefix: str
) -> None:
    pub = publisher(engine, redis_url, redis_prefix)
    wf = Workflow()
    real = session_factory(engine)
    racing: list[int | None] = []

    def sessions() -> Session:
        # The catch-up query runs after these were published: they are both in the
        # database result and in the subscription's live queue.
        if not racing:
            racing.extend(pub.publish(wf.step(n)) for n in (1, 2, 3))
        return real()

    stream = service_events(hub, sessions_of(sessions), wf.service_id, None)
    assert await take(stream, 3) == racing
    last = await asyncio.to_thread(pub.publish, wf.done())
    # Had the live copies of 1-3 not been dropped, they would come before this one.
    assert await take(stream, 1) == [last]
    await stream.aclose()


def sessions_of(factory: Callable[[], Session]) -> sessionmaker[Session]:
    """A sessionmaker-compatible callable (the relay only calls it)."""
    return factory  # type: ignore[return-value]


async def test_concurrent_run_no_loss_no_duplicates(
    engine: Engine, hub: EventHub, redis_url: str, redis_prefix: str
) -> None:
    pub = publisher(engine, redis_url, redis_prefix)
    wf = Workflow()
    total = 40
    started = threading.Event()

    def run() -> None:
        for n in range(1, total):
            pub.publish(wf.step(n))
            if n == 10:
                started.set()
        pub.publish(wf.done())

    thread = threading.Thread(target=run)
    thread.start()
    await asyncio.to_thread(started.wait, WAIT)
    # Two clients join mid-run: one fresh, one resuming from an early id.
    fresh = service_events(hub, session_factory(engine), wf.service_id, None)
    resumed = service_events(hub, session_factory(engine), wf.service_id, 3)
    got_fresh = await take(fresh, total)
    got_resumed = await take(resumed, total - 3)
    await asyncio.to_thread(thread.join)
    with Session(engine) as s:
        all_ids = [r.id for r in s.query(EventLog).order_by(EventLog.id)]
    assert got_fresh == all_ids
    assert got_resumed == [i for i in all_ids if i > 3]
    await fresh.aclose()
    await resumed.aclose()


async def test_redis_restart_mid_run_client_gets_every_event(
    engine: Engine, redis_server: RedisServer
) -> None:
    hub = EventHub(redis_server.url, "r:", backoff_max=0.2)
    await hub.start()
    assert await hub.wait_connected(WAIT)
    pub = publisher(engine, redis_server.url, "r:")
    wf = Workflow()
    stream = service_events(hub, session_factory(engine), wf.service_id, None)
    first = pub.publish(wf.step(1))
    assert await take(stream, 1) == [first]

    await asyncio.to_thread(redis_server.stop)
    outbox = [pub.publish(wf.step(2)), pub.publish(wf.step(3))]
    # An event that made it to the old Redis but was lost with it (no persistence):
    # marked published, so no flusher will send it again.
    with Session(engine) as s, s.begin():
        lost = EventLog(
            service_id=wf.service_id, tenant_id=wf.tenant_id, operation="provisioning",
            operation_id=wf.operation_id, event_type="service.provisioning.progress",
            data=wf.step(3, "testing").data(), published=True,
        )  # fmt: skip
        s.add(lost)
        s.flush()
        lost_id = lost.id
    await asyncio.to_thread(redis_server.start)
    last = await asyncio.to_thread(pub.publish, wf.done())  # sends the outbox first
    got = await take(stream, 4)
    assert got == [*outbox, lost_id, last]
    assert pub.pending_count() == 0
    # Nothing else is pending for this client: a new event is the very next item.
    extra = await asyncio.to_thread(pub.publish, wf.next_operation("suspension").step(1))
    assert await take(stream, 1) == [extra]
    await stream.aclose()
    await hub.stop()


async def test_slow_client_stream_ends_and_resumes(
    engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    hub = EventHub(redis_url, redis_prefix, queue_size=3)
    await hub.start()
    assert await hub.wait_connected(WAIT)
    pub = publisher(engine, redis_url, redis_prefix)
    wf = Workflow()
    stream = service_events(hub, session_factory(engine), wf.service_id, None)
    first = pub.publish(wf.step(1))
    assert await take(stream, 1) == [first]
    ids = [await asyncio.to_thread(pub.publish, wf.step(n)) for n in range(2, 8)]
    # This consumer did not read while 6 events arrived: its stream ends ...
    with pytest.raises(StopAsyncIteration):
        while True:
            await asyncio.wait_for(anext(stream), WAIT)
    # ... and a reconnect with its last id gets everything it missed.
    resumed = service_events(hub, session_factory(engine), wf.service_id, first)
    assert await take(resumed, 6) == ids
    await resumed.aclose()
    await hub.stop()
