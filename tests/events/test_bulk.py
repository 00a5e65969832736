"""A bulk run's events: stored and streamed like service events (events/bulk.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fiberflow.api.statistics import tenant_statistics
from fiberflow.core.db.models import EventLog
from fiberflow.events.bulk import BULK_OPERATION, apublish_bulk_event, publish_bulk_event
from fiberflow.events.bulk_schema import validate_bulk_event
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.history import events_for, history
from fiberflow.events.publisher import EventPublisher, connect_sync
from fiberflow.events.record import stream_key
from tests.events.helpers import Workflow, stream_records

COUNTS = {"pending": 2, "running": 1, "completed": 0, "failed": 0, "skipped": 0}


def _progress(status: str = "running", items: list[dict[str, Any]] | None = None,
              counts: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    counts = counts or COUNTS
    return {"operation": "suspend", "status": status, "counts": counts,
            "total": sum(counts.values()), "items": items or []}  # fmt: skip


def _completed(status: str = "completed") -> dict[str, Any]:
    counts = {"pending": 0, "running": 0, "completed": 2, "failed": 1, "skipped": 0}
    return {"status": status, "counts": counts, "total": 3}


def _rows(engine: Engine, key: str) -> list[EventLog]:
    with Session(engine) as s:
        return list(s.scalars(select(EventLog).where(EventLog.service_id == key)
                              .order_by(EventLog.id)))  # fmt: skip


@pytest.fixture
def pub(engine: Engine, redis_url: str, redis_prefix: str) -> Any:
    p = EventPublisher(engine, connect_sync(redis_url), redis_prefix, coalescer=Coalescer(0))
    yield p
    p.close()


def test_events_stored_and_streamed_like_service_events(
    engine: Engine, pub: EventPublisher, redis_url: str, redis_prefix: str
) -> None:
    bulk, tenant, service = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    failed = {"service_id": service, "state": "failed", "reason": "olt-1 unreachable"}
    ids = [
        publish_bulk_event(pub, bulk, tenant, "bulk.progress", _progress()),
        publish_bulk_event(pub, bulk, tenant, "bulk.progress", _progress(items=[failed])),
        publish_bulk_event(pub, bulk, tenant, "bulk.completed", _completed()),
    ]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids)

    rows = _rows(engine, bulk)
    assert [r.id for r in rows] == ids and all(r.published for r in rows)
    assert {(r.tenant_id, r.operation, r.operation_id) for r in rows} == {
        (tenant, BULK_OPERATION, bulk)
    }
    assert [r.event_type for r in rows] == ["bulk.progress", "bulk.progress", "bulk.completed"]
    # Filled in: the ids and the time, as ISO-8601 UTC with Z.
    assert rows[0].data["bulk_id"] == bulk and rows[0].data["tenant_id"] == tenant
    assert rows[0].data["timestamp"].endswith("Z") and rows[2].data["completed_at"].endswith("Z")
    assert rows[1].data["items"] == [failed]
    for r in rows:
        validate_bulk_event(r.event_type, r.data)

    # The same global stream as service events, keyed by the bulk id.
    client = redis.Redis.from_url(redis_url)
    entries = [e for e in stream_records(client, stream_key(redis_prefix)) if e.service_id == bulk]
    client.close()
    assert [e.id for e in entries] == ids
    assert [e.data for e in entries] == [r.data for r in rows]


def test_catch_up_is_every_event_of_the_bulk_and_resume_is_after_the_id(
    engine: Engine, pub: EventPublisher
) -> None:
    bulk, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    other = Workflow(tenant_id=tenant)  # a service event in between: not the bulk's
    first = publish_bulk_event(pub, bulk, tenant, "bulk.progress", _progress("scheduled"))
    pub.publish(other.step(1))
    second = publish_bulk_event(pub, bulk, tenant, "bulk.progress", _progress())
    third = publish_bulk_event(pub, bulk, tenant, "bulk.completed", _completed())
    with Session(engine) as s:
        assert [r.id for r in events_for(s, bulk, None)] == [first, second, third]
        assert [r.id for r in events_for(s, bulk, first)] == [second, third]
        assert [r.id for r in history(s, bulk)] == [first, second, third]


def test_one_completed_event_per_bulk(engine: Engine, pub: EventPublisher) -> None:
    bulk, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    assert publish_bulk_event(pub, bulk, tenant, "bulk.completed", _completed("cancelled"))
    assert publish_bulk_event(pub, bulk, tenant, "bulk.completed", _completed()) is None
    assert [r.data["status"] for r in _rows(engine, bulk)] == ["cancelled"]


@pytest.mark.parametrize(
    ("event_type", "data", "named"),
    [
        ("bulk.started", _progress(), "not a bulk event type"),
        ("bulk.progress", {**_progress(), "total": 9}, "not total 9"),
        ("bulk.progress", _progress(status="paused"), "status"),
        ("bulk.progress", {**_progress(), "operation": "provision"}, "operation"),
        ("bulk.progress", _progress(items=[{"service_id": "x", "state": "failed"}]), "service_id"),
        ("bulk.progress", _progress(items=[{"service_id": str(uuid.uuid4()), "state": "gone"}]),
         "state"),
        ("bulk.progress", {k: v for k, v in _progress().items() if k != "counts"}, "counts"),
        ("bulk.progress", {**_progress(), "timestamp": "2026-12-07T09:30:00"}, "UTC"),
        ("bulk.completed", _completed("running"), "status"),
        ("bulk.progress", {**_progress(), "bulk_id": str(uuid.uuid4())}, "bulk_id"),
    ],
)  # fmt: skip
def test_bad_event_refused_before_anything_is_stored(
    engine: Engine, pub: EventPublisher, event_type: str, data: dict[str, Any], named: str
) -> None:
    bulk = str(uuid.uuid4())
    with pytest.raises(ValueError, match=named):
        publish_bulk_event(pub, bulk, str(uuid.uuid4()), event_type, data)
    assert _rows(engine, bulk) == []


def test_a_redis_client_is_not_a_publisher(redis_url: str) -> None:
    client = connect_sync(redis_url)
    with pytest.raises(TypeError, match="EventPublisher"):
        publish_bulk_event(client, str(uuid.uuid4()), str(uuid.uuid4()), "bulk.progress",  # type: ignore[arg-type]
                           _progress())  # fmt: skip
    client.close()


def test_redis_down_keeps_the_event_in_the_outbox(
    engine: Engine, dead_redis_url: str, redis_url: str, redis_prefix: str
) -> None:
    bulk, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    down = EventPublisher(engine, connect_sync(dead_redis_url), redis_prefix)
    event_id = publish_bulk_event(down, bulk, tenant, "bulk.progress", _progress())
    down.close()
    assert event_id is not None and [r.published for r in _rows(engine, bulk)] == [False]

    client = connect_sync(redis_url)
    up = EventPublisher(engine, client, redis_prefix)
    assert up.flush_outbox() >= 1
    entries = [e for e in stream_records(client, stream_key(redis_prefix)) if e.service_id == bulk]
    assert [e.id for e in entries] == [event_id]
    up.close()


def test_a_naive_datetime_from_the_database_is_utc(engine: Engine, pub: EventPublisher) -> None:
    """SQLite gives back naive datetimes of stored UTC times (a bulk run's finished_at)."""
    bulk, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    data = {**_completed(), "completed_at": datetime(2026, 12, 7, 9, 30)}
    assert publish_bulk_event(pub, bulk, tenant, "bulk.completed", data)
    assert _rows(engine, bulk)[0].data["completed_at"] == "2026-12-07T09:30:00Z"


async def test_async_variant(engine: Engine, pub: EventPublisher) -> None:
    bulk, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    data = {**_progress(), "timestamp": at}
    event_id = await apublish_bulk_event(pub, bulk, tenant, "bulk.progress", data)
    rows = _rows(engine, bulk)
    assert [r.id for r in rows] == [event_id]
    assert rows[0].data["timestamp"] == "2026-12-07T09:30:00Z"


def test_bulk_events_stay_out_of_the_lifecycle_statistics(
    engine: Engine, pub: EventPublisher
) -> None:
    tenant = str(uuid.uuid4())
    publish_bulk_event(pub, str(uuid.uuid4()), tenant, "bulk.completed", _completed())
    with Session(engine) as s:
        assert tenant_statistics(s, tenant)["operations"] == {}
