"""The outbox flusher: sends stored events to Redis from the API process.

With ``FIBERFLOW_EVENT_SENDER=api`` on PostgreSQL it is what sends every event:
the listener (events/listener.py) wakes it at each commit that stored one. Without a
wake-up, and as the backstop for a missed notification or a Redis outage, it flushes
every ``interval`` seconds. Any number of flushers may run at once (on PostgreSQL they
take turns under a lock; on SQLite a duplicate in Redis is dropped by consumers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fiberflow.events.publisher import FLUSH_BATCH, EventPublisher

logger = logging.getLogger(__name__)


async def run_outbox_flusher(
    publisher: EventPublisher, interval: float = 1.0, wake: asyncio.Event | None = None
) -> None:
    """Flush forever (cancel to stop): a full batch is followed at once by the next; then
    wait for ``wake`` (set by the listener) or ``interval``, whichever comes first."""
    wake = wake if wake is not None else asyncio.Event()
    while True:
        # Cleared before the flush: an event stored during it sets it again and is
        # flushed next, not left for the interval.
        wake.clear()
        try:
            sent = await asyncio.to_thread(publisher.flush_outbox, FLUSH_BATCH)
        except Exception:
            logger.exception("outbox flush failed")
            sent = 0
        if sent:
            logger.debug("outbox flushed", extra={"events": sent})
        if sent < FLUSH_BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
