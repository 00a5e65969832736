"""One service's event stream for one SSE connection: database catch-up, then live.

Order of operations gives no loss and no duplicates:

1. subscribe to the hub first (live events start queueing),
2. read the catch-up from the database (``events_for``: ids above
   ``Last-Event-ID``, or the latest operation's events),
3. then deliver live events, dropping every id not above the last one sent.

A ``GAP`` from the hub (Redis reconnected) re-reads the database above the last
sent id. A consumer that falls too far behind is cut off (the stream ends; the
client resumes with ``Last-Event-ID``).

``ServiceStream`` is that logic as one small object (an idle SSE connection keeps
it for its whole life).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from sqlalchemy.orm import Session, sessionmaker

from fiberflow.events.history import events_for
from fiberflow.events.hub import EventHub, Gap, SubscriptionOverflow, Woken
from fiberflow.events.record import EventRecord

logger = logging.getLogger(__name__)


def _load(sessions: sessionmaker[Session], service_id: str, after: int | None) -> list[EventRecord]:
    with sessions() as session:
        return events_for(session, service_id, after)


class ServiceStream:
    """Every event of ``service_id`` after ``last_event_id`` (see module doc), live.

    ``next()`` returns the next event, or None when ``interrupt()`` woke it first; it
    raises StopAsyncIteration when the stream is over (hub stopped, ``close()``, or
    the consumer overflowed its queue). Subscribes at once; ``close()`` unsubscribes.
    Catch-up rows are held only until they are handed out.
    """

    __slots__ = ("service_id", "last", "_sessions", "_sub", "_backlog", "_load_after", "_loaded")

    def __init__(
        self,
        hub: EventHub,
        sessions: sessionmaker[Session],
        service_id: str,
        last_event_id: int | None,
    ) -> None:
        self.service_id = service_id
        self._sessions = sessions
        self._sub = hub.subscribe(service_id)  # first: live events queue from now on
        self.last = last_event_id if last_event_id is not None else 0
        self._backlog: deque[EventRecord] | None = None
        self._load_after = last_event_id  # None: the latest operation
        self._loaded = False  # a database read is due while False

    async def next(self) -> EventRecord | None:
        while True:
            if self._backlog:
                record = self._backlog.popleft()
                self.last = max(self.last, record.id)
                return record
            self._backlog = None
            if not self._loaded:
                self._loaded = True
                records = await asyncio.to_thread(
                    _load, self._sessions, self.service_id, self._load_after
                )
                if records:
                    self._backlog = deque(records)
                continue
            try:
                item = self._sub.poll()
            except SubscriptionOverflow:
                logger.info(
                    "event stream ended: consumer too slow",
                    extra={"service_id": self.service_id, "last_event_id": self.last},
                )
                raise StopAsyncIteration from None
            if item is None:
                # The future itself, not a coroutine: one frame less per idle connection.
                await self._sub.ready()
            elif isinstance(item, Woken):
                return None
            elif isinstance(item, Gap):
                self._loaded, self._load_after = False, self.last
            elif item.id > self.last:
                self.last = item.id
                return item

    def interrupt(self) -> None:
        """Wake a pending ``next()`` (it returns None); remembered if none is pending."""
        self._sub.interrupt()

    def close(self) -> None:
        self._sub.close()
        self._backlog = None
