"""LISTEN for "an event was stored" (PostgreSQL NOTIFY) and wake the outbox flusher.

The storing transaction queues ``pg_notify(EVENTS_CHANNEL)`` (events/publisher.py); the
database delivers it at the commit to every listening API process. One long-lived
connection per process, in autocommit (a LISTEN inside an open transaction would only
start at its commit). A lost connection is opened again after ``retry`` seconds, with
one wake-up for whatever was stored meanwhile; until then the flusher's interval sends.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from sqlalchemy.engine import make_url

from fiberflow.events.publisher import EVENTS_CHANNEL

logger = logging.getLogger(__name__)


def libpq_url(database_url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy's form) → the plain URL libpq takes."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def listen_for_events(
    database_url: str,
    wake: asyncio.Event,
    *,
    retry: float = 1.0,
    ready: asyncio.Event | None = None,
) -> None:
    """Set ``wake`` at each notification, forever (cancel to stop). ``ready`` is set each
    time a LISTEN is in place (at start and after a reconnection)."""
    conninfo = libpq_url(database_url)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=5
            ) as conn:
                await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                wake.set()  # anything stored while nobody listened
                if ready is not None:
                    ready.set()
                async for _notify in conn.notifies():
                    wake.set()
        except psycopg.OperationalError as exc:
            logger.warning(
                "event listener lost its database connection; retrying",
                extra={"error": str(exc), "retry_seconds": retry},
            )
        await asyncio.sleep(retry)
