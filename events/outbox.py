"""The outbox flusher: sends events that could not reach Redis when they were stored.

The API process runs it in its lifespan; any number of flushers may run at once
(duplicates in Redis are dropped by consumers).
"""

from __future__ import annotations

import asyncio
import logging

from fiberflow.events.publisher import FLUSH_BATCH, EventPublisher

logger = logging.getLogger(__name__)


async def run_outbox_flusher(publisher: EventPublisher, interval: float = 1.0) -> None:
    """Flush forever (cancel to stop): a full batch is followed at once by the next."""
    while True:
        try:
            sent = await asyncio.to_thread(publisher.flush_outbox, FLUSH_BATCH)
        except Exception:
            logger.exception("outbox flush failed")
            sent = 0
        if sent:
            logger.info("outbox flushed", extra={"events": sent})
        if sent < FLUSH_BATCH:
            await asyncio.sleep(interval)
