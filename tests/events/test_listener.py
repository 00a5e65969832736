"""Events sent by the API: the storing transaction NOTIFYs, the listener wakes the outbox
flusher, flushes of several processes send each event once and in order (PostgreSQL);
on SQLite the storing process sends as before."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import redis
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import EventLog
from fiberflow.core.settings import Settings
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.listener import libpq_url, listen_for_events
from fiberflow.events.outbox import run_outbox_flusher
from fiberflow.events.publisher import EventPublisher, connect_sync, sent_by_api
from fiberflow.events.record import stream_key
from tests.events.helpers import WAIT, Workflow, stream_records, until

# A flusher that only a wake-up can move within a test's life.
NEVER = 3600.0

postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _published(engine: Engine) -> list[bool]:
    with Session(engine) as session:
        return list(session.scalars(select(EventLog.published).order_by(EventLog.id)))


def _in_stream(client: redis.Redis, stream: str, event_id: int | None) -> bool:
    return any(r.id == event_id for r in stream_records(client, stream))


@asynccontextmanager
async def _listening(url: str, wake: asyncio.Event) -> AsyncIterator[asyncio.Event]:
    ready = asyncio.Event()
    task = asyncio.create_task(listen_for_events(url, wake, retry=0.05, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), WAIT)
        yield ready
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@postgres_only
def test_a_notifying_publisher_only_commits(
    engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    client = connect_sync(redis_url)
    pub = EventPublisher(engine, client, redis_prefix, notify=True)
    wf = Workflow()
    ids = [pub.publish(wf.step(1)), pub.publish(wf.step(2))]
    assert all(isinstance(i, int) for i in ids)
    # Stored, not sent: the API's flusher sends it.
    assert _published(engine) == [False, False]
    assert client.xlen(stream_key(redis_prefix)) == 0
    assert pub.flush_outbox() == 2
    assert [r.id for r in stream_records(client, stream_key(redis_prefix))] == ids
    assert _published(engine) == [True, True]
    client.close()


@postgres_only
async def test_the_commit_wakes_the_listener(engine: Engine, database_url: str) -> None:
    pub = EventPublisher(engine, None, notify=True)
    wake = asyncio.Event()
    async with _listening(database_url, wake):
        wake.clear()
        await asyncio.to_thread(pub.publish, Workflow().step(1))
        await asyncio.wait_for(wake.wait(), WAIT)


@postgres_only
async def test_the_flusher_sends_at_the_wake_up_not_at_the_interval(
    engine: Engine, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    client = connect_sync(redis_url)
    stream = stream_key(redis_prefix)
    sender = EventPublisher(engine, client, redis_prefix, notify=True)
    run = EventPublisher(make_engine(database_url), None, notify=True)  # a flow run's
    wake = asyncio.Event()
    async with _listening(database_url, wake):
        flusher = asyncio.create_task(run_outbox_flusher(sender, interval=NEVER, wake=wake))
        try:
            wf = Workflow()
            for step in (1, 2, 3):
                event_id = await asyncio.to_thread(run.publish, wf.step(step))
                sent = partial(_in_stream, client, stream, event_id)
                await until(sent, f"event {event_id} in Redis")
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
    assert _published(engine) == [True, True, True]
    client.close()


@postgres_only
async def test_the_listener_listens_again_after_losing_its_connection(
    engine: Engine, database_url: str
) -> None:
    pub = EventPublisher(engine, None, notify=True)
    wake = asyncio.Event()
    async with _listening(database_url, wake) as ready:
        ready.clear()
        with engine.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
                )
            ).scalar_one()
        assert killed == 1
        await asyncio.wait_for(ready.wait(), WAIT)
        wake.clear()
        await asyncio.to_thread(pub.publish, Workflow().step(1))
        await asyncio.wait_for(wake.wait(), WAIT)


@postgres_only
def test_flushers_of_two_processes_send_each_event_once_in_order(
    engine: Engine, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    client = connect_sync(redis_url)
    replicas = [
        EventPublisher(
            make_engine(database_url), connect_sync(redis_url), redis_prefix, notify=True
        )  # fmt: skip
        for _ in range(2)
    ]
    runs = [Workflow() for _ in range(4)]
    storing = EventPublisher(engine, None, notify=True)
    stored = threading.Event()

    def store(wf: Workflow) -> None:
        for step in range(1, 26):
            storing.publish(wf.step(step % 6 + 1))

    def flush(pub: EventPublisher) -> None:
        while not stored.is_set() or pub.pending_count():
            pub.flush_outbox(limit=7)

    writers = [threading.Thread(target=store, args=(wf,)) for wf in runs]
    flushers = [threading.Thread(target=flush, args=(p,)) for p in replicas]
    for t in (*writers, *flushers):
        t.start()
    for t in writers:
        t.join(WAIT * 4)
    stored.set()
    for t in flushers:
        t.join(WAIT * 4)
    assert not any(t.is_alive() for t in (*writers, *flushers))

    sent = stream_records(client, stream_key(redis_prefix))
    with Session(engine) as session:
        stored_ids = list(session.scalars(select(EventLog.id).order_by(EventLog.id)))
    assert len(stored_ids) == 100
    assert sorted(r.id for r in sent) == stored_ids  # every one, none twice
    for wf in runs:
        mine = [r.id for r in sent if r.service_id == wf.service_id]
        assert len(mine) == 25 and mine == sorted(mine)
    client.close()


@postgres_only
def test_one_service_stored_from_four_processes_streams_in_id_order(
    engine: Engine, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    # Four writers on one service while a flusher sends: every id reaches Redis once, in
    # id order.
    client = connect_sync(redis_url)
    wf = Workflow()
    sender = EventPublisher(make_engine(database_url), connect_sync(redis_url), redis_prefix)
    stored = threading.Event()
    errors: list[BaseException] = []

    def store() -> None:
        pub = EventPublisher(make_engine(database_url), None, notify=True,
                             coalescer=Coalescer(0))  # fmt: skip
        try:
            for step in range(20):
                pub.publish(wf.step(step % 6 + 1))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def flush() -> None:
        while not stored.is_set() or sender.pending_count():
            sender.flush_outbox(limit=3)

    writers = [threading.Thread(target=store) for _ in range(4)]
    flusher = threading.Thread(target=flush)
    for t in (*writers, flusher):
        t.start()
    for t in writers:
        t.join(WAIT * 4)
    stored.set()
    flusher.join(WAIT * 4)
    assert not errors and not flusher.is_alive()
    sent = [r.id for r in stream_records(client, stream_key(redis_prefix))]
    with Session(engine) as session:
        assert sent == list(session.scalars(select(EventLog.id).order_by(EventLog.id)))
    assert len(sent) == 80
    client.close()


@pytest.fixture
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from fiberflow.core.db.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'events.db'}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def test_on_sqlite_the_storing_process_sends(
    sqlite_engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    settings = Settings(event_sender="api")
    assert sent_by_api(settings, sqlite_engine) is False  # SQLite has no NOTIFY
    client = connect_sync(redis_url)
    # Even asked to notify, a publisher on SQLite sends itself: nothing would wake a flusher.
    pub = EventPublisher(sqlite_engine, client, redis_prefix, notify=True)
    event_id = pub.publish(Workflow().step(1))
    assert [r.id for r in stream_records(client, stream_key(redis_prefix))] == [event_id]
    assert _published(sqlite_engine) == [True]
    client.close()


@postgres_only
def test_the_setting_chooses_who_sends(engine: Engine) -> None:
    assert sent_by_api(Settings(event_sender="api"), engine) is True
    assert sent_by_api(Settings(), engine) is False  # the default: each run sends


def test_libpq_url_drops_the_sqlalchemy_driver() -> None:
    assert libpq_url("postgresql+psycopg://u:p@127.0.0.1:5432/db") == (
        "postgresql://u:p@127.0.0.1:5432/db"
    )
