"""api/sse_route.py in process: the stream endpoints stay documented FastAPI routes while
``StreamRoute`` serves them, and their early answers keep their order and bodies (the
streams themselves run against a real uvicorn in test_realtime.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from fiberflow.api.app import create_app
from fiberflow.api.sse_route import StreamRoute
from fiberflow.core.settings import Settings
from tests.api.sse import auth
from tests.fixtures.api_app import app_routes

SERVICE = "/api/v1/realtime/service-lifecycle/{service_id}"
BULK = "/api/v1/realtime/bulk/{bulk_id}"
KEY = "k" * 48


@pytest.fixture
def no_redis(tmp_path: Path) -> Iterator[TestClient]:
    """The app without Redis (no stack in its data dir): every stream is 503."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        redis_url=None,
        jwt_secret=KEY,
        reconcile_interval_seconds=0,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_stream_routes_are_documented_api_routes(no_redis: TestClient) -> None:
    assert isinstance(no_redis.app, FastAPI)
    routes = {path: route for _, path, route in app_routes(no_redis.app)}
    for path in (SERVICE, BULK):
        assert isinstance(routes[path], StreamRoute) and isinstance(routes[path], APIRoute)
    spec = no_redis.get("/openapi.json").json()
    for path, codes in (
        (SERVICE, {401, 404, 422, 429, 503}),
        (BULK, {401, 403, 404, 422, 429, 503}),
    ):
        get = spec["paths"][path]["get"]
        assert get["responses"]["200"]["content"] == {"text/event-stream": {}}
        assert {int(c) for c in get["responses"]} == {200, *codes}
        for code in codes:
            schema = get["responses"][str(code)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
        assert [p["name"] for p in get["parameters"]] == [path.rsplit("{")[1][:-1], "Last-Event-ID"]
        assert get["security"] == [{"HTTPBearer": []}, {"APIKeyCookie": []}]
        assert "description" not in get  # the declaration's body is no documentation


def test_early_answers_in_order_with_their_json_bodies(no_redis: TestClient) -> None:
    tenant = str(uuid.uuid4())
    sid = str(uuid.uuid4())
    for template in (SERVICE, BULK):
        path = template.split("{")[0] + sid
        r = no_redis.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "Bearer" in r.json()["detail"]
        r = no_redis.get(path, headers={**auth(KEY, tenant), "Last-Event-ID": "x"})
        assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
        r = no_redis.get(path, headers=auth(KEY, tenant))
        assert r.status_code == 503
        assert r.json() == {"detail": "the realtime stream needs Redis, not configured"}
        # Another method than GET: 405, as on every GET route.
        assert no_redis.post(path, headers=auth(KEY, tenant)).status_code == 405
        assert no_redis.head(path, headers=auth(KEY, tenant)).status_code == 405
    # Customers are refused the bulk stream before anything else is looked at.
    customer = auth(KEY, tenant, role="customer", sub="c1")
    r = no_redis.get(BULK.format(bulk_id=sid), headers={**customer, "Last-Event-ID": "x"})
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    r = no_redis.get(SERVICE.format(service_id=sid), headers=customer)
    assert r.status_code == 503


def test_the_route_serves_the_same_when_reached_through_the_router(no_redis: TestClient) -> None:
    """``StreamRoutes`` serves these routes ahead of the router; without it (a router
    reached directly) the route itself answers the same."""
    app = no_redis.app
    assert isinstance(app, FastAPI)

    async def router_only(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await app.router(scope, receive, send)

    tenant = str(uuid.uuid4())
    with TestClient(router_only) as direct:
        for path in (SERVICE.format(service_id=tenant), BULK.format(bulk_id=tenant)):
            assert direct.get(path).status_code == 401
            r = direct.get(path, headers=auth(KEY, tenant))
            assert r.status_code == 503 and "needs Redis" in r.json()["detail"]
