"""``GET /api/v1/realtime/bulk/{id}`` against a real uvicorn process: replay, resume,
live events, who may open it."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import Engine

from fiberflow.events.bulk_schema import validate_bulk_event
from fiberflow.events.publisher import EventPublisher
from tests.api.sse import SseReader, auth
from tests.events.helpers import Workflow
from tests.fixtures.bulk_page import SimulatedBulk, insert_bulk
from tests.fixtures.sse_api import ApiServer

STREAM = "/api/v1/realtime/bulk/{}"


def _bulk(engine: Engine) -> SimulatedBulk:
    return insert_bulk(engine, str(uuid.uuid4()))


async def test_replay_without_last_event_id_then_live(
    sse_api: ApiServer, api_engine: Engine, pub: EventPublisher, client: httpx.AsyncClient
) -> None:
    bulk = _bulk(api_engine)
    a, b, *_ = bulk.service_ids
    ids = [
        bulk.progress(pub, status="scheduled"),
        bulk.progress(pub, {a: ("running", None)}, status="running"),
        bulk.progress(pub, {a: ("failed", "olt-1 unreachable"), b: ("skipped", "suspended")}),
    ]
    # A service event of the same tenant in between is not the bulk's.
    pub.publish(Workflow(tenant_id=bulk.tenant_id).step(1))
    headers = auth(sse_api.jwt_key, bulk.tenant_id)
    async with client.stream("GET", STREAM.format(bulk.id), headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-store"
        sse = SseReader(r)
        replay = await sse.take(3)
        for sid in bulk.service_ids[2:]:
            bulk.states[sid] = "completed"
        ids.append(await asyncio.to_thread(bulk.completed, pub))
        live = await sse.next()
    got = [*replay, live]
    assert [m.id for m in got] == [str(i) for i in ids]
    assert [m.event for m in got] == ["bulk.progress"] * 3 + ["bulk.completed"]
    for m in got:
        validate_bulk_event(m.event, m.data)
        assert (m.data["bulk_id"], m.data["tenant_id"]) == (bulk.id, bulk.tenant_id)
    assert replay[2].data["items"] == [
        {"service_id": a, "state": "failed", "reason": "olt-1 unreachable"},
        {"service_id": b, "state": "skipped", "reason": "suspended"},
    ]
    assert live.data["status"] == "completed" and live.data["counts"] == {
        "pending": 0, "running": 0, "completed": 2, "failed": 1, "skipped": 1,
    }  # fmt: skip


async def test_resume_with_last_event_id_gets_each_later_event_exactly_once(
    sse_api: ApiServer, api_engine: Engine, pub: EventPublisher, client: httpx.AsyncClient
) -> None:
    bulk = _bulk(api_engine)
    sids = bulk.service_ids
    headers = auth(sse_api.jwt_key, bulk.tenant_id)
    first = bulk.progress(pub, {sids[0]: ("running", None)})
    async with client.stream("GET", STREAM.format(bulk.id), headers=headers) as r:
        seen = [m.id for m in await SseReader(r).take(1)]
    assert seen == [str(first)]
    # Disconnected: the run goes on.
    missed = [bulk.progress(pub, {sids[0]: ("completed", None)}),
              bulk.progress(pub, {sids[1]: ("running", None)})]  # fmt: skip
    resume = {**headers, "Last-Event-ID": seen[-1]}
    async with client.stream("GET", STREAM.format(bulk.id), headers=resume) as r:
        sse = SseReader(r)
        again = [m.id for m in await sse.take(2)]
        live = await asyncio.to_thread(bulk.progress, pub, {sids[1]: ("completed", None)})
        after_live = await sse.next()
        # The next message is the next event: nothing was sent twice in between.
        last = await asyncio.to_thread(bulk.completed, pub, "cancelled")
        final = await sse.next()
    assert again == [str(i) for i in missed]
    assert after_live.id == str(live)
    assert (final.id, final.event, final.data["status"]) == (str(last), "bulk.completed",
                                                             "cancelled")  # fmt: skip


async def test_heartbeats_on_an_idle_bulk_stream(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    bulk = _bulk(api_engine)
    lines: list[str] = []
    headers = auth(sse_api.jwt_key, bulk.tenant_id)
    async with client.stream("GET", STREAM.format(bulk.id), headers=headers) as r:
        async for line in r.aiter_lines():
            if line:
                lines.append(line)
                break
    assert lines[0].startswith(": ping")


async def test_who_may_open_it(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    bulk = _bulk(api_engine)
    path = STREAM.format(bulk.id)
    key = sse_api.jwt_key
    r = await client.get(path)
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    r = await client.get(path, headers=auth(key, bulk.tenant_id, role="customer", sub="cust-1"))
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    # A customer is refused before the bulk is looked up: no hint whether it exists.
    r = await client.get(STREAM.format(uuid.uuid4()),
                         headers=auth(key, bulk.tenant_id, role="customer"))  # fmt: skip
    assert r.status_code == 403
    for missing in (bulk.id, str(uuid.uuid4()), "not-a-uuid"):
        tenant = str(uuid.uuid4()) if missing == bulk.id else bulk.tenant_id
        r = await client.get(STREAM.format(missing), headers=auth(key, tenant))
        assert r.status_code == 404, missing
        assert "bulk run" in r.json()["detail"] and "not found" in r.json()["detail"]
    r = await client.get(path, headers={**auth(key, bulk.tenant_id), "Last-Event-ID": "x"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]


async def test_bulk_streams_count_against_the_tenants_cap(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    """One allowance per tenant for service and bulk streams alike (3 here)."""
    bulk = _bulk(api_engine)
    headers = auth(sse_api.jwt_key, bulk.tenant_id)
    path = STREAM.format(bulk.id)
    async with (
        client.stream("GET", path, headers=headers) as a,
        client.stream("GET", path, headers=headers) as b,
        client.stream("GET", path, headers=headers) as c,
    ):
        assert (a.status_code, b.status_code, c.status_code) == (200, 200, 200)
        r = await client.get(path, headers=headers)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
