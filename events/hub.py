"""One shared Redis reader per API process, fanning events out to its SSE connections.

The hub tails the global stream with ``XREAD BLOCK`` on a single connection and
pushes each entry into the bounded in-process queue of every subscription for
that service. A slow consumer never blocks the others: when its queue is full the
subscription is ended with ``SubscriptionOverflow`` (the SSE connection closes and
the browser resumes with ``Last-Event-ID``) — the connection is dropped, not the
event.

Redis restarts: the reader reconnects with exponential backoff. Anything may have
happened while it was away (entries published and lost with an unpersisted
Redis, a stream recreated from scratch), so after every (re)connect each
subscription receives a ``GAP`` marker, on which the relay re-reads the database
for ids above the last one it sent. The read position continues from the last
entry id seen, unless the stream is missing or went backwards (reset), in which
case the new stream is read from its start; duplicates are dropped downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from typing import Any, Final, cast

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fiberflow.events.record import DEFAULT_PREFIX, EventRecord, stream_key

logger = logging.getLogger(__name__)


class Gap:
    """Marker: events may have been missed; re-read the log above the last sent id."""

    def __repr__(self) -> str:
        return "GAP"


GAP: Final = Gap()

HubItem = EventRecord | Gap


class Woken:
    """What ``Subscription.poll()`` returns once after ``interrupt()``."""

    def __repr__(self) -> str:
        return "WOKEN"


WOKEN: Final = Woken()


class SubscriptionOverflow(Exception):
    """The consumer fell ``maxsize`` events behind and was cut off."""


class Subscription:
    """Live events of one service, in stream order; an async iterator.

    Iteration ends (StopAsyncIteration) when the hub stops or ``close()`` is called,
    and raises SubscriptionOverflow when the consumer fell too far behind.

    An idle SSE connection holds one of these for its whole life, so it is kept small
    (docs/benchmarks.md, KB per idle connection): slots, the queue created on the first
    item, and a future only while someone waits (an ``asyncio.Event`` holds an empty
    deque of ~0.75 KB even when nobody waits).
    """

    __slots__ = (
        "service_id",
        "_hub",
        "_maxsize",
        "_items",
        "_waiter",
        "_closed",
        "_woken",
        "overflowed",
    )

    def __init__(self, hub: EventHub, service_id: str, maxsize: int) -> None:
        self.service_id = service_id
        self._hub = hub
        self._maxsize = maxsize
        self._items: deque[HubItem] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._woken = False
        self.overflowed = False

    # called by the hub, on the event loop
    def _push(self, item: HubItem) -> None:
        if self._closed:
            return
        items = self._items
        if items is None:
            items = self._items = deque()
        elif isinstance(item, Gap) and items and isinstance(items[-1], Gap):
            return
        if len(items) >= self._maxsize:
            logger.warning(
                "slow SSE consumer cut off",
                extra={"service_id": self.service_id, "queued": len(items)},
            )
            self.overflowed = True
            items.clear()
            self.close()
            return
        items.append(item)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def close(self) -> None:
        """Unsubscribe; a pending or later ``get()`` ends the iteration."""
        if not self._closed:
            self._hub._discard(self)
        self._end()

    def interrupt(self) -> None:
        """Wake a waiter and make the next ``poll()`` return ``WOKEN`` (``wait()``:
        None): how the SSE relay wakes an idle connection for a heartbeat or a client
        that went away."""
        self._woken = True
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        return len(self._items) if self._items else 0

    def poll(self) -> HubItem | Woken | None:
        """The next queued item without waiting; ``WOKEN`` (once) after ``interrupt()``;
        None when there is nothing yet. At the end, raises StopAsyncIteration, or
        SubscriptionOverflow when cut off (queued items come first)."""
        if self._items:
            return self._items.popleft()
        if self._closed:
            if self.overflowed:
                raise SubscriptionOverflow(self.service_id)
            raise StopAsyncIteration
        if self._woken:
            self._woken = False
            return WOKEN
        return None

    def ready(self) -> asyncio.Future[None]:
        """A future done at the next push, ``interrupt()`` or end (then ``poll()``)."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def wait(self) -> HubItem | None:
        """The next item, or None once after ``interrupt()``; at the end as ``poll()``."""
        while True:
            item = self.poll()
            if item is WOKEN:
                return None
            if item is not None:
                return cast("HubItem", item)
            await self.ready()

    async def get(self) -> HubItem:
        while True:
            item = await self.wait()
            if item is not None:
                return item

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> HubItem:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _parse_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class EventHub:
    def __init__(
        self,
        redis_url: str,
        prefix: str = DEFAULT_PREFIX,
        *,
        queue_size: int = 1000,
        block_ms: int = 1000,
        batch: int = 1000,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        client_name: str = "fiberflow-event-hub",
    ) -> None:
        self.redis_url = redis_url
        self.stream = stream_key(prefix)
        self.queue_size = queue_size
        self.block_ms = block_ms
        self.batch = batch
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.client_name = client_name
        self._subs: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._last_id: bytes | str = "0-0"
        self._positioned = False
        self._stopping = False
        self.reconnects = 0
        self.delivered = 0

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="event-hub-reader")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            # Python 3.11's wait_for (used inside redis-py) can swallow a cancellation
            # that lands as a write completes; the stop flag ends the loop after the
            # current XREAD BLOCK then, and we cancel again until the task is done.
            task.cancel()
            while not task.done():
                await asyncio.wait({task}, timeout=self.block_ms / 1000 + 1)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._connected.clear()
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub._end()
        self._subs.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- subscriptions ----------------------------------------------------------------
    def subscribe(self, service_id: str) -> Subscription:
        sub = Subscription(self, service_id, self.queue_size)
        if self._task is None:
            sub._end()  # a stopped hub delivers nothing
            return sub
        self._subs.setdefault(service_id, set()).add(sub)
        return sub

    def _discard(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.service_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.service_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def _broadcast_gap(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub._push(GAP)

    def _dispatch(self, fields: dict[Any, Any]) -> None:
        try:
            record = EventRecord.from_fields(fields)
        except (KeyError, ValueError) as exc:
            logger.warning("malformed stream entry skipped", extra={"error": str(exc)})
            return
        for sub in list(self._subs.get(record.service_id, ())):
            sub._push(record)
            self.delivered += 1

    # -- the reader -------------------------------------------------------------------
    def _client(self) -> aioredis.Redis:
        # The socket timeout must outlast XREAD BLOCK (redis-py's default 5 s would
        # break a 5 s block); retries are ours (reconnect loop), not the client's.
        return aioredis.Redis.from_url(
            self.redis_url,
            single_connection_client=True,
            socket_timeout=self.block_ms / 1000 + 5,
            socket_connect_timeout=2,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            client_name=self.client_name,
        )

    async def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stopping:
            client = self._client()
            try:
                await self._position(client)
                self._connected.set()
                delay = self.backoff_initial
                logger.info(
                    "event hub reading",
                    extra={"stream": self.stream, "from_id": str(self._last_id)},
                )
                self._broadcast_gap()
                await self._read(client)
            except (redis.RedisError, OSError) as exc:
                if self._connected.is_set():
                    logger.warning(
                        "event hub lost redis; reconnecting",
                        extra={"stream": self.stream, "error": str(exc)},
                    )
                self._connected.clear()
                self.reconnects += 1
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.backoff_max)
            finally:
                await client.aclose()

    async def _position(self, client: aioredis.Redis) -> None:
        try:
            info = await client.xinfo_stream(self.stream)
        except redis.ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
            # No stream (fresh or restarted Redis): whatever gets added is new to us.
            self._last_id = "0-0"
            self._positioned = True
            return
        last_generated = info["last-generated-id"]
        if not self._positioned:
            self._last_id = last_generated  # first start: live events only
        elif _parse_id(last_generated) < _parse_id(self._last_id):
            logger.warning("event stream was reset; reading it from the start")
            self._last_id = "0-0"
        self._positioned = True

    async def _read(self, client: aioredis.Redis) -> None:
        while not self._stopping:
            response = cast(
                "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None",
                await client.xread(
                    {self.stream: self._last_id}, count=self.batch, block=self.block_ms
                ),
            )
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._dispatch(fields)
            await asyncio.sleep(0)  # let consumers run between batches
