"""Redis down during a provisioning: the run does not notice (events wait in the database
outbox), and once Redis is back every event reaches the stream, in id order, none lost.

Each test runs its own redis-server (``redis_server``), which keeps nothing across a
restart. Redis faults do not depend on the database backend: SQLite only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from fiberflow.core.settings import get_settings
from fiberflow.events.record import DEFAULT_PREFIX, EventRecord, stream_key
from fiberflow.flows.provision import provision
from fiberflow.tasks.runtime import reset_runtime, runtime
from tests.events.helpers import first_occurrences, stream_records
from tests.faults.helpers import assert_completed, in_thread
from tests.fixtures.lifecycle import Lifecycle
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

STREAM = stream_key(DEFAULT_PREFIX)


@pytest.fixture
def own_redis(
    lifecycle: Lifecycle, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> RedisServer:
    """The flows publish to this test's own redis-server."""
    monkeypatch.setenv("FIBERFLOW_REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    reset_runtime()
    return redis_server


def test_redis_down_for_a_whole_provisioning(lifecycle: Lifecycle, own_redis: RedisServer) -> None:
    own_redis.stop()
    sid = lifecycle.new_service()
    provision(sid)
    assert_completed(lifecycle, sid, "provisioning", "active")
    logged = lifecycle.events(sid)
    publisher = runtime().publisher
    assert publisher.pending_count() == len(logged) >= 8  # nothing reached Redis
    assert not any(e.published for e in logged)

    own_redis.start()
    assert publisher.flush_outbox() == len(logged)
    assert publisher.pending_count() == 0
    client = own_redis.client()
    try:
        delivered = stream_records(client, STREAM)
    finally:
        client.close()
    assert [r.id for r in delivered] == [e.id for e in logged]  # every one, in id order
    assert [(r.event_type, r.data) for r in delivered] == [(e.event_type, e.data) for e in logged]


class StreamReader:
    """A live consumer of the stream (as the API's relay is): XREAD from the last entry
    it saw, reconnecting while Redis is down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[int] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = "0-0"
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=1)
        while not self._stop.is_set():
            try:
                reply: Any = client.xread({STREAM: last}, block=100)
                for _stream, entries in reply or []:
                    for entry_id, fields in entries:
                        self.ids.append(EventRecord.from_fields(fields).id)
                        last = entry_id
            except (redis.RedisError, OSError):
                self.errors += 1
                time.sleep(0.05)
        client.close()

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(5)
        return self.ids


def test_redis_restarted_mid_run_loses_nothing(
    lifecycle: Lifecycle, own_redis: RedisServer
) -> None:
    lifecycle.lab.device("olt-1").faults.update(latency=0.5, latency_match=r"^ont add")
    reader = StreamReader(own_redis.url)
    sid = lifecycle.new_service()
    publisher = runtime().publisher
    run = in_thread(provision, sid)

    def logged() -> list[int]:
        return [e.id for e in lifecycle.events(sid)]

    deadline = time.monotonic() + 60
    while not any(e.data.get("step") == 3 for e in lifecycle.events(sid)):
        assert time.monotonic() < deadline, "the run never reached step 3"
        time.sleep(0.02)
    own_redis.stop()  # during step 3 (the OLT is slow to add the ONT)
    while publisher.pending_count() < 2:  # events of steps 3 and 4 wait in the outbox
        assert time.monotonic() < deadline, "no event was published while Redis was down"
        time.sleep(0.02)
    own_redis.start()  # empty: whatever the stream held is gone
    run()
    assert_completed(lifecycle, sid, "provisioning", "active")
    # The run's next publishes sent the backlog first: nothing waits for a flusher.
    assert publisher.pending_count() == 0
    expected = logged()
    while len(set(reader.ids)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.02)
    seen = first_occurrences(reader.stop())
    assert reader.errors  # it did see Redis go away
    assert seen == expected  # every event reached a live consumer, in id order
