"""One service's event stream for one SSE connection: database catch-up, then live.

Order of operations gives no loss and no duplicates:

1. subscribe to the hub first (live events start queueing),
2. read the catch-up from the database (``events_for``: ids above
   ``Last-Event-ID``, or the latest operation's events),
3. then deliver live events, dropping every id not above the last one sent.

A ``GAP`` from the hub (Redis reconnected) re-reads the database above the last
sent id. A consumer that falls too far behind is cut off (the stream ends; the
client resumes with ``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from sqlalchemy.orm import Session, sessionmaker

from events.history import events_for
from events.hub import EventHub, Gap, SubscriptionOverflow
from events.record import EventRecord

logger = logging.getLogger(__name__)


def _load(sessions: sessionmaker[Session], service_id: str, after: int | None) -> list[EventRecord]:
    with sessions() as session:
        return events_for(session, service_id, after)


async def service_events(
    hub: EventHub,
    sessions: sessionmaker[Session],
    service_id: str,
    last_event_id: int | None,
) -> AsyncIterator[EventRecord]:
    """Every event of ``service_id`` after ``last_event_id`` (see module doc), live.

    Ends when the hub stops or the consumer overflowed its queue.
    """
    sub = hub.subscribe(service_id)
    last = last_event_id if last_event_id is not None else 0
    try:
        for record in await asyncio.to_thread(_load, sessions, service_id, last_event_id):
            yield record
            last = max(last, record.id)
        while True:
            try:
                item = await sub.get()
            except StopAsyncIteration:
                return
            if isinstance(item, Gap):
                for record in await asyncio.to_thread(_load, sessions, service_id, last):
                    yield record
                    last = max(last, record.id)
            elif item.id > last:
                yield item
                last = item.id
    except SubscriptionOverflow:
        logger.info(
            "event stream ended: consumer too slow",
            extra={"service_id": service_id, "last_event_id": last},
        )
    finally:
        sub.close()
