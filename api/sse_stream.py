"""One SSE connection's machinery, kept small because thousands stay open per process.

``StreamResponse`` keeps sse-starlette's framing, headers, ping comments and
``SendTimeoutError`` but streams from the request's own task: sse-starlette's
``EventSourceResponse`` runs four tasks per connection (stream, ping, exit watcher,
disconnect listener), ~22 KB of the ~48 KB an idle connection held (tracemalloc, see
docs/benchmarks.md). Disconnects come from uvicorn's ``receive()`` in one plain task,
heartbeats from one ``Heartbeats`` ticker per process, shutdown from one exit watcher
per process (api/realtime.py). ``ConnectionLimiter`` caps streams per tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.event import ensure_bytes
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

from fiberflow.core.metrics import SSE_CONNECTIONS, SSE_EVENTS_SENT
from fiberflow.events.hub import EventHub
from fiberflow.events.record import EventRecord
from fiberflow.events.relay import ServiceStream

log = logging.getLogger(__name__)


class _GcFreezer:
    """Each open stream adds long-lived objects that every full collection walks again:
    at 5,000 connections full collections paused the relay for 1-5 s
    (docs/benchmarks.md). Freezing after every ``every`` new connections moves them out
    of the collector's way. The cost: cycles among frozen objects are never collected;
    a closed stream's objects are freed by reference counting as usual."""

    def __init__(self, every: int = 256) -> None:
        self.every = every
        self._opened = 0

    def connection_opened(self) -> None:
        self._opened += 1
        if self._opened % self.every == 0:
            # Collect the young generations first: garbage cycles (ended streams'
            # exceptions and tracebacks) would otherwise be frozen for good.
            gc.collect(1)
            gc.freeze()


gc_freezer = _GcFreezer()


class ConnectionLimiter:
    """Open SSE connections per tenant in this API process, capped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}

    def acquire(self, tenant_id: str) -> bool:
        n = self._open.get(tenant_id, 0)
        if n >= self.cap:
            return False
        self._open[tenant_id] = n + 1
        return True

    def release(self, tenant_id: str) -> None:
        n = self._open.get(tenant_id, 0) - 1
        if n > 0:
            self._open[tenant_id] = n
        else:
            self._open.pop(tenant_id, None)

    def open(self, tenant_id: str) -> int:
        return self._open.get(tenant_id, 0)


class Heartbeats:
    """One timer for the heartbeats of every stream of the process (a timer handle per
    connection is ~0.4 KB on uvloop). Streams are dealt round-robin into ``groups``;
    every ``interval / groups`` seconds one group is woken, so each stream gets a
    heartbeat every ``interval`` (its first within ``interval`` of connecting) and the
    pings of thousands of streams stay spread out instead of coming in one burst."""

    def __init__(self, interval: float, groups: int = 16) -> None:
        self.interval = interval
        self._groups: list[set[StreamResponse]] = [set() for _ in range(groups)]
        self._deal = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, stream: StreamResponse) -> int:
        group = self._deal
        self._deal = (group + 1) % len(self._groups)
        self._groups[group].add(stream)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sse-heartbeats")
        return group

    def discard(self, stream: StreamResponse, group: int) -> None:
        self._groups[group].discard(stream)

    def __len__(self) -> int:
        return sum(len(g) for g in self._groups)

    async def _run(self) -> None:
        step = self.interval / len(self._groups)
        turn = 0
        while True:
            await asyncio.sleep(step)
            for stream in list(self._groups[turn]):
                try:
                    stream.heartbeat()
                except Exception:  # one stream's failure must not stop every heartbeat
                    log.exception("SSE heartbeat failed")
            turn = (turn + 1) % len(self._groups)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _NoBody:
    """``EventSourceResponse`` wants a content iterable; ``StreamResponse`` streams
    from its ``ServiceStream`` instead (HEAD, served by sse-starlette, sends no body)."""

    def __aiter__(self) -> _NoBody:
        return self

    async def __anext__(self) -> Any:
        raise StopAsyncIteration


_NO_BODY = _NoBody()


class StreamResponse(EventSourceResponse):
    """sse-starlette's response (headers, HEAD, message framing, ping comments, send
    timeout) served with less per connection.

    ``EventSourceResponse.__call__`` runs an anyio task group of four tasks per
    connection (stream, ping, shutdown watcher, disconnect listener): ~22 KB of the
    ~48 KB of Python memory an idle connection held (tracemalloc; docs/benchmarks.md).
    Here the request's own task streams; the only other task is uvicorn's
    ``receive()`` (disconnect detection), with a done callback instead of a wrapper
    coroutine; heartbeats come from the process's ``Heartbeats``; shutdown is watched
    once per process (``realtime_lifespan``), which stops the hub and so ends every
    stream. Heartbeat and disconnect wake the stream through its subscription.

    Frees the tenant's connection slot however the response ends.
    """

    def __init__(
        self,
        hub: EventHub,
        sessions: sessionmaker[Session],
        service_id: str,
        after: int | None,
        *,
        heartbeats: Heartbeats,
        send_timeout: float,
        limiter: ConnectionLimiter,
        tenant_id: str,
    ) -> None:
        super().__init__(_NO_BODY, ping=heartbeats.interval, send_timeout=send_timeout)
        # Identical for every stream: one shared list instead of one per connection.
        # Shared by every stream as a tuple: anything that tried to add a header to one
        # response would fail loudly instead of adding it to all of them.
        shared = tuple(self.raw_headers)
        self.raw_headers = _RAW_HEADERS.setdefault(shared, shared)  # type: ignore[assignment]
        self._send_lock = None  # type: ignore[assignment]  # one sender here: no lock
        self._hub = hub
        self._sessions = sessions
        self._service_id = service_id
        self._after = after
        self._heartbeats = heartbeats
        self._limiter = limiter
        self._tenant_id = tenant_id
        self._stream: ServiceStream | None = None
        self._receive: Receive | None = None
        self._rx: asyncio.Future[Message] | None = None
        self._ping_due = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        SSE_CONNECTIONS.inc()
        try:
            if scope["type"] == "http" and scope["method"].upper() != "HEAD":
                await self._serve(receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            SSE_CONNECTIONS.dec()
            self._limiter.release(self._tenant_id)

    async def _serve(self, receive: Receive, send: Send) -> None:
        stream = self._stream = ServiceStream(
            self._hub, self._sessions, self._service_id, self._after
        )
        self._receive = receive
        self._listen()
        group = self._heartbeats.add(self)
        try:
            await self._send_with_timeout(
                send,
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                },
            )
            while self.active:
                try:
                    record = await stream.next()
                except StopAsyncIteration:
                    break
                if not self.active:
                    break
                if record is not None:
                    await self._send_body(send, _wire.get(record, self.sep))
                    _count_sent(record.event_type)
                if self._ping_due:
                    self._ping_due = False
                    await self._send_body(send, self._ping_bytes())
            if self.active:
                self.active = False
                await self._send_with_timeout(
                    send, {"type": "http.response.body", "body": b"", "more_body": False}
                )
        finally:
            self._heartbeats.discard(self, group)
            if self._rx is not None:
                self._rx.cancel()
            stream.close()

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        # sse-starlette's contract (SendTimeoutError) with asyncio's timeout, not an
        # anyio cancel scope per message.
        try:
            async with asyncio.timeout(self.send_timeout):
                await send(message)
        except TimeoutError:
            raise SendTimeoutError from None

    async def _send_body(self, send: Send, body: bytes) -> None:
        await self._send_with_timeout(
            send, {"type": "http.response.body", "body": body, "more_body": True}
        )

    def _ping_bytes(self) -> bytes:
        factory = self.ping_message_factory
        event = (
            factory()
            if factory is not None
            else ServerSentEvent(comment=f"ping - {datetime.now(UTC)}", sep=self.sep)
        )
        return ensure_bytes(event, self.sep)

    def heartbeat(self) -> None:
        """Called by ``Heartbeats``: send a ping comment as soon as possible."""
        self._ping_due = True
        if self._stream is not None:
            self._stream.interrupt()

    def _listen(self) -> None:
        assert self._receive is not None
        self._rx = asyncio.ensure_future(self._receive())
        self._rx.add_done_callback(self._received)

    def _received(self, rx: asyncio.Future[Message]) -> None:
        if rx.cancelled():
            return
        if rx.exception() is None and rx.result()["type"] != "http.disconnect":
            self._listen()  # the request (body) itself: listen on
            return
        self._rx = None
        if self.active:
            self.active = False
            log.debug("SSE client went away", extra={"service_id": self._service_id})
            if self._stream is not None:
                self._stream.interrupt()


_RAW_HEADERS: dict[tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes], ...]] = {}


class _WireCache:
    """Each event's SSE bytes, built once and sent to every stream of its service
    (encoding is ~6 µs; at 100 streams per service that was most of a delivery's own
    cost). Bounded: the newest ``size`` events; catch-up of older ones re-encodes."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._bytes: dict[tuple[int, str], tuple[EventRecord, bytes]] = {}

    def get(self, record: EventRecord, sep: str) -> bytes:
        key = (record.id, sep)
        hit = self._bytes.get(key)
        # An id reused for another event (a restored database, a reset sequence) must
        # never get the old event's bytes: the record itself is compared too.
        if hit is not None and hit[0] == record:
            return hit[1]
        wire = ServerSentEvent(
            data=json.dumps(record.data, separators=(",", ":")),
            event=record.event_type,
            id=str(record.id),
            sep=sep,
        ).encode()
        if len(self._bytes) >= self.size:
            # dicts keep insertion order: drop the oldest quarter at once
            for old in list(self._bytes)[: self.size // 4]:
                del self._bytes[old]
        self._bytes[key] = (record, wire)
        return wire


_wire = _WireCache()
_sent_by_type: dict[str, Any] = {}


def _count_sent(event_type: str) -> None:
    # prometheus-client's labels() validates and locks on every call: keep the children.
    counter = _sent_by_type.get(event_type)
    if counter is None:
        counter = _sent_by_type[event_type] = SSE_EVENTS_SENT.labels(event_type=event_type)
    counter.inc()
