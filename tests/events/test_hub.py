from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from fiberflow.events.hub import GAP, WOKEN, EventHub, Gap, Subscription, SubscriptionOverflow
from fiberflow.events.record import EventRecord
from tests.events.helpers import WAIT, fake_record, until
from tests.fixtures.redis import RedisServer


async def take(sub: Subscription, n: int, *, gaps: bool = False) -> list[EventRecord | Gap]:
    """The next ``n`` items (GAP markers skipped unless ``gaps``)."""
    out: list[EventRecord | Gap] = []
    while len(out) < n:
        item = await asyncio.wait_for(sub.get(), WAIT)
        if gaps or not isinstance(item, Gap):
            out.append(item)
    return out


def ids(items: list[EventRecord | Gap]) -> list[int]:
    return [i.id for i in items if isinstance(i, EventRecord)]


@pytest.fixture
async def hub(redis_server: RedisServer) -> AsyncIterator[EventHub]:
    h = EventHub(redis_server.url, "h:", client_name=f"hub-{uuid.uuid4().hex[:8]}")
    await h.start()
    assert await h.wait_connected(WAIT)
    yield h
    await h.stop()


def _names(client: redis.Redis) -> list[str]:
    return [c["name"] for c in client.client_list()]


async def test_fan_out_to_many_subscribers_over_one_connection(
    hub: EventHub, redis_server: RedisServer
) -> None:
    second = EventHub(redis_server.url, "h:", client_name="second-api-process")
    await second.start()
    assert await second.wait_connected(WAIT)
    services = [str(uuid.uuid4()) for _ in range(10)]
    subs = {s: [hub.subscribe(s) for _ in range(20)] for s in services}
    other = {s: second.subscribe(s) for s in services}
    assert hub.subscriber_count == 200

    client = redis_server.client()
    expected: dict[str, list[int]] = {s: [] for s in services}
    event_id = 0
    for _round in range(5):
        for s in services:
            event_id += 1
            client.xadd("h:events", fake_record(event_id, s))
            expected[s].append(event_id)

    for s in services:
        for sub in subs[s]:
            assert ids(await take(sub, 5)) == expected[s]
        assert ids(await take(other[s], 5)) == expected[s]
    # One reader connection per hub, however many subscribers.
    names = _names(client)
    assert names.count(hub.client_name) == 1
    assert names.count("second-api-process") == 1
    assert all(sub.pending() == 0 for group in subs.values() for sub in group)
    await second.stop()
    client.close()


async def test_slow_consumer_is_cut_off_without_blocking_others(redis_server: RedisServer) -> None:
    hub = EventHub(redis_server.url, "h:", queue_size=5)
    await hub.start()
    assert await hub.wait_connected(WAIT)
    service = str(uuid.uuid4())
    slow, fast = hub.subscribe(service), hub.subscribe(service)
    client = redis_server.client()
    for i in range(1, 21):
        client.xadd("h:events", fake_record(i, service))
        if i % 4 == 0:
            assert ids(await take(fast, 4)) == list(range(i - 3, i + 1))
    assert slow.overflowed and slow.closed
    with pytest.raises(SubscriptionOverflow):
        await slow.get()
    assert hub.subscriber_count == 1  # the slow one is gone; the fast one stays
    await hub.stop()
    client.close()


async def test_hub_survives_redis_restart(hub: EventHub, redis_server: RedisServer) -> None:
    service = str(uuid.uuid4())
    sub = hub.subscribe(service)
    client = redis_server.client()
    client.xadd("h:events", fake_record(1, service))
    assert ids(await take(sub, 1)) == [1]

    await asyncio.to_thread(redis_server.restart)
    # Nothing survived; a new stream starts. Its first entry even gets an id below
    # the last one the hub saw (as from a Redis host whose clock is behind).
    client = redis_server.client()
    client.xadd("h:events", fake_record(2, service), id="5-0")
    await until(lambda: hub.reconnects >= 1 and hub.connected, "hub reconnect")
    client.xadd("h:events", fake_record(3, service))
    got = await take(sub, 3, gaps=True)
    assert got[0] is GAP  # subscribers are told to re-read the log
    assert ids(got) == [2, 3]
    client.close()


async def test_hub_started_while_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.stop()
    hub = EventHub(redis_server.url, "h:", backoff_max=0.2)
    await hub.start()
    service = str(uuid.uuid4())
    sub = hub.subscribe(service)
    assert not hub.connected
    await asyncio.to_thread(redis_server.start)
    assert await hub.wait_connected(WAIT)
    client = redis_server.client()
    client.xadd("h:events", fake_record(7, service))
    assert ids(await take(sub, 1)) == [7]
    await hub.stop()
    client.close()


async def test_stop_ends_every_subscription(hub: EventHub) -> None:
    subs = [hub.subscribe(str(uuid.uuid4())) for _ in range(3)]
    waiting = [asyncio.create_task(_drain(s)) for s in subs]
    await asyncio.sleep(0)
    await hub.stop()
    assert await asyncio.wait_for(asyncio.gather(*waiting), WAIT) == [0, 0, 0]
    late = hub.subscribe("x")
    assert await _drain(late) == 0  # a stopped hub hands out ended subscriptions


async def test_closed_subscription_gets_nothing_more(
    hub: EventHub, redis_server: RedisServer
) -> None:
    service = str(uuid.uuid4())
    keep, gone = hub.subscribe(service), hub.subscribe(service)
    async with gone:
        pass
    client = redis_server.client()
    client.xadd("h:events", fake_record(1, service))
    client.xadd("h:events", {"garbage": "entry"})  # malformed entries are skipped
    client.xadd("h:events", fake_record(2, service))
    assert ids(await take(keep, 2)) == [1, 2]
    assert gone.pending() == 0 and hub.subscriber_count == 1
    client.close()


async def _drain(sub: Subscription) -> int:
    n = 0
    async for item in sub:
        if isinstance(item, EventRecord):
            n += 1
    return n


async def test_interrupt_wakes_a_waiting_consumer_once_and_never_displaces_events(
    hub: EventHub, redis_server: RedisServer
) -> None:
    """How the SSE relay wakes an idle connection (heartbeat, client gone)."""
    service = str(uuid.uuid4())
    sub = hub.subscribe(service)
    waiting = asyncio.create_task(sub.wait())
    await until(lambda: sub._waiter is not None, "the consumer to wait")
    sub.interrupt()
    assert await asyncio.wait_for(waiting, WAIT) is None
    assert sub.poll() is None  # one wake-up per interrupt

    sub.interrupt()  # nobody waiting: remembered for the next poll
    assert sub.poll() is WOKEN and sub.poll() is None

    # Queued events come before a pending wake-up, which is kept, not lost.
    client = redis_server.client()
    client.xadd("h:events", fake_record(1, service))
    await until(lambda: sub.pending() == 1, "the event to arrive")
    sub.interrupt()
    assert ids(await take(sub, 1)) == [1]
    assert sub.poll() is WOKEN and sub.poll() is None
    client.close()
    sub.close()
    with pytest.raises(StopAsyncIteration):
        sub.poll()
