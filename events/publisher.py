"""Publishing: database event log first (the source of truth and the outbox), then Redis.

``publish()`` is synchronous because it runs inside Prefect state hooks in worker
processes. It commits the event to ``event_log``, then XADDs every still
unpublished event of that service — oldest first, the new one last — to the global
stream and marks them published. If Redis is down the rows simply stay
unpublished; the next publish for the service, or ``flush_outbox()`` (the API
runs it periodically), sends them later in order. A Redis failure is logged,
never raised. Duplicates in Redis are possible (two flushers racing) and harmless:
consumers drop ids they have already sent.

Per service, events must reach Redis in id order, otherwise a live consumer that
has sent id 11 would drop a late id 10. So the insert takes a per-service lock:
SQLite serializes writers anyway (BEGIN IMMEDIATE), PostgreSQL gets a
transaction-scoped advisory lock, which makes commit order equal id order.

On PostgreSQL a publisher built with ``notify=True`` (what flow runs and the API use
with ``FIBERFLOW_EVENT_SENDER=api``; the default, ``run``, sends) does not send at all:
the storing transaction NOTIFYs ``EVENTS_CHANNEL`` and the API's listener
(events/listener.py) wakes its outbox flusher at the commit. A flow run's process then
does one short transaction per event, and the hop to Redis runs in the API, not in a
process that may wait for a core behind dozens of other runs. Those flushes take a
database-wide advisory lock, so several API replicas send each event once, in id order.

The same lock makes "exactly one ``completed`` or ``failed`` event per operation" hold
whoever publishes it (the run's own hook, or the crash reconciler for a run killed
between its status commit and its event): under it, a terminal event whose operation
already has one is not stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import EventLog
from fiberflow.core.db.models.logs import TERMINAL_EVENT_SQL
from fiberflow.core.settings import Settings, get_settings
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.record import DEFAULT_PREFIX, EventRecord, stream_key
from fiberflow.events.schema import LifecycleEvent

logger = logging.getLogger(__name__)

# Cap of one flush batch; a longer backlog goes out over several calls, still in order.
FLUSH_BATCH = 500
# PostgreSQL NOTIFY channel: "an event was stored, flush the outbox".
EVENTS_CHANNEL = "fiberflow_events"
# Advisory lock key that serializes outbox flushes across processes (PostgreSQL).
FLUSH_LOCK_KEY = "fiberflow.events:flush"
# A transaction-scoped advisory lock on a text key (released at commit or rollback).
XACT_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(:key))"


def connect_sync(url: str, *, connect_timeout: float = 1.0, timeout: float = 2.0) -> redis.Redis:
    """A sync client that fails fast: a down Redis must not stall a task's hook."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )


def sent_by_api(settings: Settings, engine: Engine) -> bool:
    """Whether events stored through ``engine`` reach Redis through the API's listener
    (``FIBERFLOW_EVENT_SENDER=api`` on PostgreSQL) rather than from the storing process."""
    return settings.event_sender == "api" and engine.dialect.name == "postgresql"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event as its ``event_log`` row: ``key`` is what its stream is keyed by (the
    service id; a bulk run's id for the bulk's events). ``terminal``: at most one such
    event per (``key``, ``operation_id``) is stored."""

    key: str
    tenant_id: str
    operation: str
    operation_id: str | None
    event_type: str
    data: dict[str, Any]
    terminal: bool = False


class EventPublisher:
    def __init__(
        self,
        db: Engine | sessionmaker[Session],
        redis_client: redis.Redis | None,
        prefix: str = DEFAULT_PREFIX,
        retention_seconds: float = 3600,
        *,
        coalescer: Coalescer | None = None,
        notify: bool = False,
    ) -> None:
        self._sessions = sessionmaker(db, expire_on_commit=False) if isinstance(db, Engine) else db
        self._redis = redis_client
        # NOTIFY instead of sending (PostgreSQL only; ignored on SQLite, which has none).
        self.notify = notify
        self.stream = stream_key(prefix)
        self.retention_seconds = retention_seconds
        self.coalescer = coalescer if coalescer is not None else Coalescer()
        self._flush_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> EventPublisher:
        settings = settings or get_settings()
        url = settings.effective_redis_url()
        engine = make_engine(settings.effective_database_url())
        return cls(
            engine,
            connect_sync(url) if url else None,
            retention_seconds=settings.event_retention_seconds,
            notify=sent_by_api(settings, engine),
        )

    # -- publishing -------------------------------------------------------------------
    def publish(
        self, event: LifecycleEvent, *, only_if: Callable[[Session], bool] | None = None
    ) -> int | None:
        """Store ``event`` and send it to Redis. Returns its log id (the SSE ``id:``),
        or None when it was not stored: the coalescer dropped it as chatty, it is a
        second ``completed`` / ``failed`` event of one operation (the first one stands),
        or ``only_if`` (asked in the storing transaction, under the service's lock)
        said no.

        A connection lost mid-transaction (terminated backend, failover) is retried once on
        a fresh connection; other database errors propagate (the event is not stored).
        Redis errors never do.
        """
        if not self.coalescer.admit(event):
            return None
        return self.publish_entry(
            LogEntry(
                key=event.service_id,
                tenant_id=event.tenant_id,
                operation=event.operation.value,
                operation_id=event.operation_id,
                event_type=event.event_type,
                data=event.data(),
                terminal=event.is_terminal,
            ),
            only_if=only_if,
        )

    def publish_entry(
        self, entry: LogEntry, *, only_if: Callable[[Session], bool] | None = None
    ) -> int | None:
        """``publish()`` for an event that is already a log row's fields (no coalescing):
        what a bulk run's events go through (events/bulk.py), keyed by the bulk id."""
        try:
            event_id, pending = self._store(entry, only_if)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # Nothing was committed (the commit is the last statement), so one more
            # try cannot store the event twice.
            logger.warning("event store lost its connection; retrying once",
                           extra={"service_id": entry.key})  # fmt: skip
            event_id, pending = self._store(entry, only_if)
        if pending:
            self._send(pending)
        return event_id

    def _store(
        self, entry: LogEntry, only_if: Callable[[Session], bool] | None = None
    ) -> tuple[int | None, list[EventRecord]]:
        with self._sessions() as session, session.begin():
            notified = _lock_service(session, entry.key, notify=self.notify)
            if (
                entry.terminal
                and entry.operation_id is not None
                and has_terminal_event(session, entry.key, entry.operation_id)
            ):
                logger.info(
                    "operation already has its terminal event; not stored again",
                    extra={"service_id": entry.key, "flow_run_id": entry.operation_id,
                           "event_type": entry.event_type},
                )  # fmt: skip
                return None, []
            if only_if is not None and not only_if(session):
                return None, []
            row = EventLog(
                service_id=entry.key,
                tenant_id=entry.tenant_id,
                operation=entry.operation,
                operation_id=entry.operation_id,
                event_type=entry.event_type,
                data=entry.data,
                published=False,
            )
            session.add(row)
            session.flush()
            event_id = row.id
            sends = self._redis is not None and not notified
            pending = _unpublished(session, entry.key) if sends else []
        return event_id, pending

    def flush_outbox(self, limit: int = FLUSH_BATCH) -> int:
        """Send up to ``limit`` unpublished events, oldest first. Returns how many
        reached Redis (0 when Redis is down or nothing is pending)."""
        if self._redis is None:
            return 0
        with self._flush_lock:
            if self.notify and self._postgresql():
                return self._flush_locked(limit)
            with self._sessions() as session:
                pending = [EventRecord.from_row(r) for r in _unpublished_rows(session, limit)]
            return self._send(pending) if pending else 0

    def _flush_locked(self, limit: int) -> int:
        # One transaction under a database-wide lock: read, XADD, mark. A second flusher
        # (another API replica, woken by the same NOTIFY) waits, then reads after the
        # first one's commit and finds nothing left: each event is sent once.
        with self._sessions() as session, session.begin():
            session.execute(text(XACT_LOCK_SQL), {"key": FLUSH_LOCK_KEY})
            rows = _unpublished_rows(session, limit)
            if not rows or not self._xadd([EventRecord.from_row(r) for r in rows]):
                return 0
            ids = [r.id for r in rows]
            session.execute(update(EventLog).where(EventLog.id.in_(ids)).values(published=True))
        return len(ids)

    def _postgresql(self) -> bool:
        with self._sessions() as session:  # no connection is opened for this
            return session.get_bind().dialect.name == "postgresql"

    def pending_count(self) -> int:
        """Events still waiting in the outbox."""
        with self._sessions() as session:
            count = session.scalar(
                select(func.count()).select_from(EventLog).where(EventLog.published.is_(False))
            )
        return int(count or 0)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()

    # -- internals --------------------------------------------------------------------
    def _send(self, records: Sequence[EventRecord]) -> int:
        if not self._xadd(records):
            return 0
        ids = [r.id for r in records]
        try:
            with self._sessions() as session, session.begin():
                session.execute(update(EventLog).where(EventLog.id.in_(ids)).values(published=True))
        except Exception:
            # Already in Redis; left unpublished it is only sent again (a duplicate).
            logger.exception("could not mark events published", extra={"event_ids": ids})
        return len(ids)

    def _xadd(self, records: Sequence[EventRecord]) -> bool:
        """XADD ``records`` in order; False (logged) when Redis is unavailable."""
        assert self._redis is not None
        minid = f"{int((time.time() - self.retention_seconds) * 1000)}-0"
        try:
            pipe = self._redis.pipeline(transaction=False)
            for record in records:
                fields: dict[FieldT, EncodableT] = {k: v for k, v in record.to_fields().items()}
                pipe.xadd(self.stream, fields, minid=minid, approximate=True)
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            # Outbox: the rows stay unpublished and go out with the next publish/flush.
            logger.warning(
                "redis unavailable; events kept in the outbox",
                extra={
                    "event_ids": [r.id for r in records],
                    "stream": self.stream,
                    "error": str(exc),
                },
            )
            return False
        return True


def _unpublished_rows(
    session: Session, limit: int, service_id: str | None = None
) -> Sequence[EventLog]:
    """Up to ``limit`` events not yet in Redis (of one service, or all), oldest first."""
    query = select(EventLog).where(EventLog.published.is_(False))
    if service_id is not None:
        query = query.where(EventLog.service_id == service_id)
    return session.scalars(query.order_by(EventLog.id).limit(limit)).all()


def _unpublished(session: Session, service_id: str) -> list[EventRecord]:
    return [EventRecord.from_row(r) for r in _unpublished_rows(session, FLUSH_BATCH, service_id)]


def has_terminal_event(session: Session, service_id: str, operation_id: str) -> bool:
    """Whether the operation (run) ``operation_id`` of the service has its ``completed``
    or ``failed`` event in the log (committed, or stored in ``session``)."""
    found = session.scalar(
        select(EventLog.id)
        .where(EventLog.operation_id == operation_id, EventLog.service_id == service_id)
        .where(text(TERMINAL_EVENT_SQL))
        .limit(1)
    )
    return found is not None


def _lock_service(session: Session, service_id: str, *, notify: bool = False) -> bool:
    """Take the service's event lock; with ``notify`` on PostgreSQL, also queue the NOTIFY
    that the commit delivers (same round trip). Returns whether it was queued."""
    # PostgreSQL hands out ids at insert but readers see them at commit; without this
    # lock a later id could commit (and be streamed) before an earlier one of the same
    # service. Released at commit. SQLite's BEGIN IMMEDIATE already serializes writers.
    if session.get_bind().dialect.name != "postgresql":
        return False
    lock = XACT_LOCK_SQL
    if notify:
        # Delivered at the commit, never before the row is visible; a transaction that
        # stores nothing (a second terminal event) wakes the flusher for nothing.
        lock += f", pg_notify('{EVENTS_CHANNEL}', '')"
    session.execute(text(lock), {"key": f"fiberflow.events:{service_id}"})
    return notify
