from __future__ import annotations

import json
import threading

import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import EventLog
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.publisher import EventPublisher, connect_sync
from fiberflow.events.record import stream_key
from tests.events.helpers import Workflow, first_occurrences, stream_records
from tests.fixtures.redis import RedisServer


def _rows(engine: Engine) -> list[EventLog]:
    with Session(engine) as session:
        return list(session.scalars(select(EventLog).order_by(EventLog.id)))


def test_publish_writes_log_then_redis(engine: Engine, redis_url: str, redis_prefix: str) -> None:
    client = connect_sync(redis_url)
    pub = EventPublisher(engine, client, redis_prefix)
    wf = Workflow()
    ids = [pub.publish(wf.step(1)), pub.publish(wf.step(2)), pub.publish(wf.done())]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids)

    rows = _rows(engine)
    assert [r.id for r in rows] == ids and all(r.published for r in rows)
    assert {(r.service_id, r.tenant_id, r.operation, r.operation_id) for r in rows} == {
        (wf.service_id, wf.tenant_id, "provisioning", wf.operation_id)
    }
    assert [r.event_type for r in rows] == [
        "service.provisioning.progress",
        "service.provisioning.progress",
        "service.provisioning.completed",
    ]

    entries = stream_records(client, stream_key(redis_prefix))
    assert [e.id for e in entries] == ids
    assert [e.data for e in entries] == [r.data for r in rows]
    assert rows[0].data["status"] == "step-1" and rows[0].data["step"] == 1
    raw = client.xrange(stream_key(redis_prefix))[2][1]
    assert json.loads(raw[b"data"])["completed_at"].endswith("Z")
    assert raw[b"service_id"].decode() == wf.service_id
    client.close()


def test_stream_is_trimmed_by_time(engine: Engine, redis_url: str, redis_prefix: str) -> None:
    client = connect_sync(redis_url)
    stream = stream_key(redis_prefix)
    # 300 entries from 1970: far older than any retention window.
    for i in range(1, 301):
        client.xadd(stream, {"old": str(i)}, id=f"1-{i}")
    pub = EventPublisher(engine, client, redis_prefix, retention_seconds=3600)
    pub.publish(Workflow().step(1))
    # MINID ~ trims whole stream nodes (100 entries each), so a partial node may stay.
    assert client.xlen(stream) < 301
    assert stream_records(client, stream)[-1].event_type == "service.provisioning.progress"
    client.close()


def test_redis_down_keeps_events_in_outbox(engine: Engine, dead_redis_url: str) -> None:
    pub = EventPublisher(engine, connect_sync(dead_redis_url), "x:")
    wf = Workflow()
    event_id = pub.publish(wf.step(1))  # must not raise
    assert isinstance(event_id, int)
    assert [(r.id, r.published) for r in _rows(engine)] == [(event_id, False)]
    assert pub.pending_count() == 1
    assert pub.flush_outbox() == 0
    assert pub.pending_count() == 1


def test_outbox_flushes_in_order(
    engine: Engine, dead_redis_url: str, redis_url: str, redis_prefix: str
) -> None:
    down = EventPublisher(engine, connect_sync(dead_redis_url), redis_prefix)
    a, b = Workflow(), Workflow()
    for n in range(1, 4):
        down.publish(a.step(n))
        down.publish(b.step(n))
    down.publish(a.done())
    expected = [r.id for r in _rows(engine)]
    assert len(expected) == 7

    client = connect_sync(redis_url)
    up = EventPublisher(engine, client, redis_prefix)
    assert up.flush_outbox(limit=3) == 3  # a batch takes the oldest first
    assert up.flush_outbox() == 4
    assert up.flush_outbox() == 0
    assert up.pending_count() == 0
    assert [e.id for e in stream_records(client, stream_key(redis_prefix))] == expected
    client.close()


def test_redis_restart_mid_run_delivers_backlog_first(
    engine: Engine, redis_server: RedisServer
) -> None:
    client = connect_sync(redis_server.url)
    pub = EventPublisher(engine, client, "p:")
    wf, other = Workflow(), Workflow()
    first = pub.publish(wf.step(1))
    redis_server.stop()
    backlog = [pub.publish(wf.step(2)), pub.publish(other.step(1)), pub.publish(wf.step(3))]
    assert pub.pending_count() == 3
    redis_server.start()  # empty: this server keeps nothing across restarts
    last = pub.publish(wf.step(4))
    # The service's older unpublished events went out first, in order; the other
    # service's event waits for the flusher.
    ids = [e.id for e in stream_records(client, "p:events")]
    assert ids == [backlog[0], backlog[2], last]
    assert pub.pending_count() == 1
    assert pub.flush_outbox() == 1
    ids = [e.id for e in stream_records(client, "p:events")]
    assert ids == [backlog[0], backlog[2], last, backlog[1]]
    assert first is not None and first < min(i for i in backlog if i is not None)
    client.close()


def test_concurrent_publishers_keep_per_service_order(
    engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    wf = Workflow()
    errors: list[BaseException] = []

    def worker() -> None:
        # Each thread is its own publisher, like separate worker processes.
        pub = EventPublisher(engine, connect_sync(redis_url), redis_prefix, coalescer=Coalescer(0))
        try:
            for n in range(15):
                pub.publish(wf.step(n))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            pub.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    client = redis.Redis.from_url(redis_url)
    ids = first_occurrences([e.id for e in stream_records(client, stream_key(redis_prefix))])
    db_ids = [r.id for r in _rows(engine)]
    assert len(db_ids) == 60
    assert ids == db_ids  # every event reached Redis, first occurrences in id order
    client.close()
