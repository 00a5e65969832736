"""The SSE relay and the events history against a real uvicorn process."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from fiberflow.core.db.engine import make_engine
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.publisher import EventPublisher, connect_sync
from fiberflow.events.schema import validate_event
from tests.api.sse import WAIT, SseReader, auth, make_service
from tests.events.helpers import Workflow
from tests.fixtures.sse_api import ApiServer, start_stack

STREAM = "/api/v1/realtime/service-lifecycle/{}"


def _workflow(engine: Engine, customer: str = "cust-1") -> Workflow:
    tenant = str(uuid.uuid4())
    return Workflow(service_id=make_service(engine, tenant, customer), tenant_id=tenant)


async def test_stream_catch_up_then_live_with_ids_types_and_valid_data(
    sse_api: ApiServer, api_engine: Engine, pub: EventPublisher, client: httpx.AsyncClient
) -> None:
    wf = _workflow(api_engine)
    old = pub.publish(wf.step(1))
    pub.publish(wf.done())
    current = wf.next_operation("suspension")
    ids = [pub.publish(current.step(1)), pub.publish(current.step(2))]
    headers = auth(sse_api.jwt_key, wf.tenant_id)
    async with client.stream("GET", STREAM.format(wf.service_id), headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        sse = SseReader(r)
        first = await sse.take(2)  # the latest operation only, not the provisioning
        ids.append(await asyncio.to_thread(pub.publish, current.done()))
        live = await sse.next()
    got = [*first, live]
    assert [m.id for m in got] == [str(i) for i in ids] and str(old) not in [m.id for m in got]
    assert [m.event for m in got] == [
        "service.suspension.progress",
        "service.suspension.progress",
        "service.suspension.completed",
    ]
    for m in got:
        assert m.event is not None
        validate_event(m.event, m.data)
        assert m.data["service_instance_id"] == wf.service_id

    # The history endpoint lists exactly what SSE delivered, with the same ids.
    history = (await client.get(f"/api/v1/services/{wf.service_id}/events", headers=headers)).json()
    assert [h["id"] for h in history][-3:] == ids
    assert [(str(h["id"]), h["event_type"], h["data"]) for h in history[-3:]] == [
        (m.id, m.event, m.data) for m in got
    ]
    after = await client.get(
        f"/api/v1/services/{wf.service_id}/events", params={"after": ids[0]}, headers=headers
    )
    assert [h["id"] for h in after.json()] == ids[1:]


async def test_stream_headers(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    """The SSE headers browsers and proxies rely on (no caching, no proxy buffering)."""
    wf = _workflow(api_engine)
    headers = auth(sse_api.jwt_key, wf.tenant_id)
    async with client.stream("GET", STREAM.format(wf.service_id), headers=headers) as r:
        got = r.headers
    assert got["content-type"] == "text/event-stream; charset=utf-8"
    assert got["cache-control"] == "no-store" and got["x-accel-buffering"] == "no"
    assert "content-length" not in got


async def test_resume_after_disconnect_mid_run_no_loss_no_duplicates(
    sse_api: ApiServer, api_engine: Engine, pub: EventPublisher, client: httpx.AsyncClient
) -> None:
    wf = _workflow(api_engine)
    headers = auth(sse_api.jwt_key, wf.tenant_id)
    ids = [pub.publish(wf.step(1)), pub.publish(wf.step(2))]
    async with client.stream("GET", STREAM.format(wf.service_id), headers=headers) as r:
        seen = [m.id for m in await SseReader(r).take(2)]
    # Disconnected: the run goes on.
    missed = [pub.publish(wf.step(n)) for n in (3, 4, 5)]
    resume = {**headers, "Last-Event-ID": seen[-1]}
    async with client.stream("GET", STREAM.format(wf.service_id), headers=resume) as r:
        sse = SseReader(r)
        again = [m.id for m in await sse.take(3)]
        last = await asyncio.to_thread(pub.publish, wf.done())
        final = await sse.next()
    assert seen == [str(i) for i in ids]
    assert again == [str(i) for i in missed]
    assert final.id == str(last) and final.event == "service.provisioning.completed"


async def test_heartbeat_comments(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    """No events: only heartbeats (every 0.3 s here), SSE comments. An SSE client never
    surfaces comments, so this reads the wire."""
    wf = _workflow(api_engine)
    headers = auth(sse_api.jwt_key, wf.tenant_id)
    lines: list[str] = []
    async with client.stream("GET", STREAM.format(wf.service_id), headers=headers) as r:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                async for line in r.aiter_lines():
                    lines.append(line)
    comments = [line for line in lines if line]
    assert comments and all(c.startswith(": ping") for c in comments)


async def test_idle_stream_keeps_getting_heartbeats(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    """Heartbeats come from one process-wide ticker now: an idle stream still gets them,
    again and again, as sse-starlette's ping comments, and nothing else."""
    wf = _workflow(api_engine)
    headers = auth(sse_api.jwt_key, wf.tenant_id)
    pings: list[str] = []
    async with (
        client.stream("GET", STREAM.format(wf.service_id), headers=headers) as r,
        asyncio.timeout(WAIT),
    ):
        async for line in r.aiter_lines():
            assert not line.startswith(("data:", "id:", "event:")), line
            if line.startswith(":"):
                pings.append(line)
                if len(pings) == 3:
                    break
    assert all(p.startswith(": ping - ") for p in pings)


async def test_vanished_client_is_detected_without_a_heartbeat(tmp_path: Path) -> None:
    """A client that goes away while its stream is idle frees its tenant's slot at
    once: disconnect detection does not wait for a heartbeat (an hour apart here)."""
    redis, api = start_stack(tmp_path, sse_heartbeat_seconds=3600, sse_max_connections_per_tenant=1)
    engine = make_engine(api.database_url)
    try:
        wf = _workflow(engine)
        headers = auth(api.jwt_key, wf.tenant_id)
        path = STREAM.format(wf.service_id)
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {headers['Authorization']}\r\n\r\n".encode()
        )
        assert b" 200 " in await asyncio.wait_for(reader.readline(), WAIT)
        async with httpx.AsyncClient(base_url=api.url, timeout=WAIT) as client:
            assert (await client.get(path, headers=headers)).status_code == 429
            writer.transport.abort()  # gone without a word
            deadline = asyncio.get_running_loop().time() + WAIT
            while True:
                async with client.stream("GET", path, headers=headers) as again:
                    if again.status_code == 200:
                        break
                assert asyncio.get_running_loop().time() < deadline, "slot never freed"
                await asyncio.sleep(0.05)
            metrics = (await client.get("/metrics")).text
        assert "ERROR" not in api.output() and "Traceback" not in api.output()
        assert "realtime_sse_connections" in metrics
    finally:
        engine.dispose()
        api.stop()
        redis.stop()


async def test_tenant_and_customer_isolation(
    sse_api: ApiServer, api_engine: Engine, pub: EventPublisher, client: httpx.AsyncClient
) -> None:
    wf = _workflow(api_engine, customer="alice")
    pub.publish(wf.step(1))
    key, sid = sse_api.jwt_key, wf.service_id
    other_tenant = auth(key, str(uuid.uuid4()))
    cases = {
        "other tenant's operator": other_tenant,
        "other customer": auth(key, wf.tenant_id, "customer", "bob"),
    }
    for who, headers in cases.items():
        for path in (STREAM.format(sid), f"/api/v1/services/{sid}/events"):
            r = await client.get(path, headers=headers)
            assert r.status_code == 404, (who, path)
            assert sid in r.json()["detail"]
    for guessed in (str(uuid.uuid4()), "1", "../x"):
        r = await client.get(STREAM.format(guessed), headers=other_tenant)
        assert r.status_code == 404
    owner = auth(key, wf.tenant_id, "customer", "alice")
    async with client.stream("GET", STREAM.format(sid), headers=owner) as r:
        assert r.status_code == 200
        assert (await SseReader(r).next()).data["tenant_id"] == wf.tenant_id
    r = await client.get(f"/api/v1/services/{sid}/events", headers=owner)
    assert r.status_code == 200 and len(r.json()) == 1


async def test_auth_errors(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    wf = _workflow(api_engine)
    path = STREAM.format(wf.service_id)
    assert (await client.get(path)).status_code == 401
    r = await client.get(path, headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and r.json()["detail"]
    forged = auth("x" * 48, wf.tenant_id)
    assert (await client.get(path, headers=forged)).status_code == 401
    bad_id = {**auth(sse_api.jwt_key, wf.tenant_id), "Last-Event-ID": "abc"}
    r = await client.get(path, headers=bad_id)
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
    r = await client.get(
        f"/api/v1/services/{wf.service_id}/events",
        params={"after": "-1"},
        headers=auth(sse_api.jwt_key, wf.tenant_id),
    )
    assert r.status_code == 422 and "after" in r.json()["detail"]


async def test_per_tenant_cap_429_with_retry_after(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    wf = _workflow(api_engine)
    headers = auth(sse_api.jwt_key, wf.tenant_id)
    path = STREAM.format(wf.service_id)
    async with (
        client.stream("GET", path, headers=headers) as a,
        client.stream("GET", path, headers=headers) as b,
        client.stream("GET", path, headers=headers) as c,
    ):
        assert (a.status_code, b.status_code, c.status_code) == (200, 200, 200)
        r = await client.get(path, headers=headers)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) > 0 and "limit 3" in r.json()["detail"]
        # Another tenant has its own allowance.
        other = _workflow(api_engine)
        async with client.stream(
            "GET", STREAM.format(other.service_id), headers=auth(sse_api.jwt_key, other.tenant_id)
        ) as d:
            assert d.status_code == 200
    # Closed streams give their slots back (once the server has seen the disconnect).
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        async with client.stream("GET", path, headers=headers) as again:
            if again.status_code == 200:
                break
        assert asyncio.get_running_loop().time() < deadline, "slots were never released"
        await asyncio.sleep(0.1)


async def test_refused_streams_take_no_slot(
    sse_api: ApiServer, api_engine: Engine, client: httpx.AsyncClient
) -> None:
    """Answers refused before the stream (404, 422) leave the tenant's 3 slots free."""
    wf = _workflow(api_engine)
    headers = auth(sse_api.jwt_key, wf.tenant_id)
    for _ in range(2):
        assert (await client.get(STREAM.format(uuid.uuid4()), headers=headers)).status_code == 404
        bad = {**headers, "Last-Event-ID": "-1"}
        assert (await client.get(STREAM.format(wf.service_id), headers=bad)).status_code == 422
    path = STREAM.format(wf.service_id)
    async with (
        client.stream("GET", path, headers=headers) as a,
        client.stream("GET", path, headers=headers) as b,
        client.stream("GET", path, headers=headers) as c,
    ):
        assert (a.status_code, b.status_code, c.status_code) == (200, 200, 200)


async def test_two_api_processes_both_deliver_every_event(
    sse_api: ApiServer, api_engine: Engine, pub: EventPublisher, tmp_path: Path
) -> None:
    second = ApiServer(tmp_path, sse_api.database_url, sse_api.redis_url)
    second.jwt_key = sse_api.jwt_key
    second.start()
    try:
        wf = _workflow(api_engine)
        headers = auth(sse_api.jwt_key, wf.tenant_id)
        async with (
            httpx.AsyncClient(base_url=sse_api.url, timeout=WAIT) as c1,
            httpx.AsyncClient(base_url=second.url, timeout=WAIT) as c2,
            c1.stream("GET", STREAM.format(wf.service_id), headers=headers) as r1,
            c2.stream("GET", STREAM.format(wf.service_id), headers=headers) as r2,
        ):
            assert (r1.status_code, r2.status_code) == (200, 200)
            ids = [
                await asyncio.to_thread(pub.publish, e) for e in (wf.step(1), wf.step(2), wf.done())
            ]
            one = [m.id for m in await SseReader(r1).take(3)]
            two = [m.id for m in await SseReader(r2).take(3)]
        assert one == two == [str(i) for i in ids]
    finally:
        second.stop()


async def test_redis_restart_and_server_shutdown(tmp_path: Path) -> None:
    redis, api = start_stack(tmp_path, sse_heartbeat_seconds=0.5)
    engine = make_engine(api.database_url)
    pub = EventPublisher(engine, connect_sync(redis.url), coalescer=Coalescer(0))
    try:
        wf = _workflow(engine)
        headers = auth(api.jwt_key, wf.tenant_id)
        async with (
            httpx.AsyncClient(base_url=api.url, timeout=WAIT) as client,
            client.stream("GET", STREAM.format(wf.service_id), headers=headers) as r,
        ):
            sse = SseReader(r)
            ids = [pub.publish(wf.step(1))]
            assert (await sse.next()).id == str(ids[0])
            # Redis restarted mid-run (it keeps nothing): events meanwhile wait in the
            # outbox; the client still receives every one, once, in order.
            await asyncio.to_thread(redis.stop)
            ids += [pub.publish(wf.step(2)), pub.publish(wf.step(3))]
            await asyncio.to_thread(redis.start)
            ids.append(await asyncio.to_thread(pub.publish, wf.done()))
            got = [m.id for m in await sse.take(3)]
            assert got == [str(i) for i in ids[1:]]

            # Shutdown: the open stream ends and the process exits on its own.
            api.terminate()
            assert await sse.ended()
        assert api.proc is not None
        code = await asyncio.to_thread(api.proc.wait, 30)
        # uvicorn re-raises the signal after a clean shutdown, hence -SIGTERM.
        assert code in (0, -signal.SIGTERM), api.output()
        assert "ERROR" not in api.output() and "Traceback" not in api.output()
    finally:
        pub.close()
        engine.dispose()
        api.stop()
        redis.stop()
