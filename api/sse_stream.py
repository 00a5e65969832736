"""One SSE connection's machinery, kept small because thousands stay open per process.

``EventStream`` is a plain ASGI response of our own (headers, ``id:``/``event:``/
``data:`` messages encoded by sse-starlette's public ``ServerSentEvent``, ping
comments, a send timeout, disconnect detection) that streams from the request's own
task: sse-starlette's ``EventSourceResponse`` runs four tasks per connection (stream,
ping, exit watcher, disconnect listener), ~22 KB of the ~48 KB an idle connection held
(tracemalloc, see docs/benchmarks.md). Disconnects come from uvicorn's ``receive()``
in one plain task, heartbeats from one ``Heartbeats`` ticker per process, shutdown
from one exit-signal watcher per process (api/realtime.py). ``ConnectionLimiter``
caps streams per tenant. api/sse_route.py opens streams and serves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message, Receive, Scope, Send

from fiberflow.api.sse_wire import ping_bytes, wire
from fiberflow.core.metrics import SSE_CONNECTIONS, SSE_EVENTS_SENT
from fiberflow.events.hub import EventHub
from fiberflow.events.relay import ServiceStream

log = logging.getLogger(__name__)


class _GcFreezer:
    """Each open stream adds long-lived objects that every full collection walks again:
    at 5,000 connections full collections paused the relay for 1-5 s
    (docs/benchmarks.md). Freezing once ``every`` new connections have opened moves
    them out of the collector's way. The cost: cycles among frozen objects are never
    collected; a closed stream's objects are freed by reference counting as usual.

    Called from the ``Heartbeats`` ticker, not per connection: the collection and the
    freeze then pause the process between streams' work instead of inside one
    unlucky request's handler (it delayed that client's response), and a burst of
    connections is frozen in one go, at most one tick after its ``every``-th."""

    def __init__(self, every: int = 256) -> None:
        self.every = every
        self._frozen_at = 0

    def opened(self, count: int) -> None:
        """``count``: connections opened so far in this process."""
        if count - self._frozen_at < self.every:
            return
        self._frozen_at = count
        # Collect the young generations first: garbage cycles (ended streams'
        # exceptions and tracebacks) would otherwise be frozen for good.
        gc.collect(1)
        gc.freeze()


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
    pings of thousands of streams stay spread out instead of coming in one burst. Each
    tick also lets ``_GcFreezer`` freeze the streams opened meanwhile."""

    def __init__(self, interval: float, groups: int = 16) -> None:
        self.interval = interval
        self._groups: list[set[EventStream]] = [set() for _ in range(groups)]
        self._deal = 0
        self._added = 0
        self._freezer = _GcFreezer()
        self._task: asyncio.Task[None] | None = None

    def add(self, stream: EventStream) -> int:
        self._added += 1
        group = self._deal
        self._deal = (group + 1) % len(self._groups)
        self._groups[group].add(stream)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sse-heartbeats")
        return group

    def discard(self, stream: EventStream, group: int) -> None:
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
            self._freezer.opened(self._added)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class SendTimeoutError(TimeoutError):
    """A send to the client did not complete within the stream's send timeout: the
    client is gone or stalled. It ends the response, like sse-starlette's error of the
    same name did."""


# What sse-starlette sends for an SSE response, built once and shared by every stream
# as a tuple: anything that tried to add a header to one response would fail loudly
# instead of adding it to all of them.
_RAW_HEADERS = (
    # No cache of any kind may keep (and replay) a live stream.
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    # nginx: pass each event on at once instead of buffering the response.
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
)


class EventStream:
    """The SSE response of one connection, an ASGI app: ``service_id``'s events after
    ``after`` (a bulk run's id works the same way).

    Status, headers and separator are class attributes, built once. The request's own
    task streams; the only other task is uvicorn's ``receive()`` (disconnect
    detection), with a done callback instead of a wrapper coroutine; heartbeats come
    from the process's ``Heartbeats``; shutdown is watched once per process
    (``realtime_lifespan``), which stops the hub and so ends every stream. Heartbeat
    and disconnect wake the stream through its subscription. Slots: thousands are open
    at once, for hours.

    Frees the tenant's connection slot however the response ends, also when it is
    called with a dead client (send raises) or cancelled.
    """

    __slots__ = (
        "_hub",
        "_sessions",
        "_service_id",
        "_after",
        "_heartbeats",
        "_send_timeout",
        "_limiter",
        "_tenant_id",
        "_stream",
        "_receive",
        "_rx",
        "_ping_due",
        "_active",
    )

    status_code = 200
    raw_headers = _RAW_HEADERS
    sep = "\r\n"

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
        self._hub = hub
        self._sessions = sessions
        self._service_id = service_id
        self._after = after
        self._heartbeats = heartbeats
        self._send_timeout = send_timeout
        self._limiter = limiter
        self._tenant_id = tenant_id
        self._stream: ServiceStream | None = None
        self._receive: Receive | None = None
        self._rx: asyncio.Future[Message] | None = None
        self._ping_due = False
        self._active = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One coroutine for the whole stream (no inner one): a frame less per connection.
        SSE_CONNECTIONS.inc()
        stream: ServiceStream | None = None
        group = -1
        try:
            stream = self._stream = ServiceStream(
                self._hub, self._sessions, self._service_id, self._after
            )
            self._receive = receive
            self._listen()
            group = self._heartbeats.add(self)
            await self._send(
                send,
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                },
            )
            while self._active:
                try:
                    record = await stream.next()
                except StopAsyncIteration:
                    break
                if not self._active:
                    break
                if record is not None:
                    await self._send_body(send, wire.get(record, self.sep))
                    _count_sent(record.event_type)
                if self._ping_due:
                    self._ping_due = False
                    await self._send_body(send, ping_bytes(self.sep))
            if self._active:
                self._active = False
                await self._send_body(send, b"", more_body=False)
        finally:
            if group >= 0:
                self._heartbeats.discard(self, group)
            if self._rx is not None:
                self._rx.cancel()
            if stream is not None:
                stream.close()
            SSE_CONNECTIONS.dec()
            self._limiter.release(self._tenant_id)

    async def _send(self, send: Send, message: Message) -> None:
        try:
            async with asyncio.timeout(self._send_timeout):
                await send(message)
        except TimeoutError:
            raise SendTimeoutError from None

    async def _send_body(self, send: Send, body: bytes, *, more_body: bool = True) -> None:
        await self._send(send, {"type": "http.response.body", "body": body, "more_body": more_body})

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
        if self._active:
            self._active = False
            log.debug("SSE client went away", extra={"service_id": self._service_id})
            if self._stream is not None:
                self._stream.interrupt()


_sent_by_type: dict[str, Any] = {}


def _count_sent(event_type: str) -> None:
    # prometheus-client's labels() validates and locks on every call: keep the children.
    counter = _sent_by_type.get(event_type)
    if counter is None:
        counter = _sent_by_type[event_type] = SSE_EVENTS_SENT.labels(event_type=event_type)
    counter.inc()
