"""Per-tenant rate limit on creates: a token bucket in the real Redis, after auth."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fiberflow.api.app import build_state
from fiberflow.api.ratelimit import TokenBucket, limit_creates, namespace
from fiberflow.core.db.migrate import upgrade
from fiberflow.core.db.models import ServiceInstance
from fiberflow.core.settings import Settings
from fiberflow.core.tokens import Principal
from tests.fixtures.api_app import ApiApp, new_serial, open_api

SERVICES = "/api/v1/services"
# Small: a token comes back only every 30 s, so a slow machine does not refill the bucket
# between the creates of one test.
LIMIT = 2


def _body() -> dict[str, str]:
    return {"customer_ref": "cust-1", "plan": "100M", "olt": "olt-1", "pon_port": "0/1/3",
            "ont_serial": new_serial()}  # fmt: skip


@pytest.fixture
def limited(
    tmp_path: Path, api_inventory: Path, prefect_deployments: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ApiApp, ApiApp]]:
    """Two API replicas on one database (so one set of buckets), LIMIT creates a minute."""
    monkeypatch.setenv("FIBERFLOW_CREATE_RATE_PER_MINUTE", str(LIMIT))
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    with (
        open_api(url, tmp_path / "one", api_inventory, prefect_deployments) as one,
        open_api(url, tmp_path / "two", api_inventory, prefect_deployments) as two,
    ):
        two.jwt_key = one.jwt_key  # one deployment, one key
        two.app.state.fiberflow.jwt_key = one.jwt_key
        yield one, two


def _count(api: ApiApp, tenant: str) -> int:
    with Session(api.engine) as s:
        q = select(func.count()).select_from(ServiceInstance)
        return int(s.scalar(q.where(ServiceInstance.tenant_id == tenant)) or 0)


def test_creates_over_the_limit_get_429_and_other_tenants_do_not(
    limited: tuple[ApiApp, ApiApp],
) -> None:
    one, two = limited
    tenant, other = str(uuid.uuid4()), str(uuid.uuid4())
    # The bucket is the tenant's, whichever replica answers.
    started = time.monotonic()
    for api in (one, two):
        r = api.client.post(SERVICES, json=_body(), headers=api.auth(tenant=tenant))
        assert r.status_code == 202, r.text
    for api in (one, two):
        r = api.client.post(SERVICES, json=_body(), headers=api.auth(tenant=tenant))
        assert r.status_code == 429, (r.text, f"{time.monotonic() - started:.1f} s after the first")
        assert r.headers["content-type"].startswith("application/json")
        assert f"limit {LIMIT} per minute" in r.json()["detail"]
        # One token comes back every 60/LIMIT seconds.
        assert 1 <= int(r.headers["Retry-After"]) <= 60 // LIMIT
    assert _count(one, tenant) == LIMIT  # a refused create leaves nothing behind

    r = two.client.post(SERVICES, json=_body(), headers=two.auth(tenant=other))
    assert r.status_code == 202, r.text

    # Authentication and the role come first: 401 / 403, never 429.
    customer = one.auth(role="customer", tenant=tenant, sub="cust-1")
    assert one.client.post(SERVICES, json=_body(), headers=customer).status_code == 403
    assert one.client.post(SERVICES, json=_body()).status_code == 401
    # Other routes are not limited.
    assert one.client.get(SERVICES, headers=one.auth(tenant=tenant)).status_code == 200
    assert "429" in one.app.openapi()["paths"][SERVICES]["post"]["responses"]


async def test_bucket_refills_at_its_rate(redis_url: str, redis_prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        bucket = TokenBucket(redis, per_minute=120, burst=1, prefix=redis_prefix + "bucket")
        first = await bucket.take("t")
        assert first.allowed and first.remaining == 0
        denied = await bucket.take("t")
        assert not denied.allowed and 0 < denied.retry_after <= 0.5
        await asyncio.sleep(denied.retry_after + 0.1)
        assert (await bucket.take("t")).allowed
        # Keys are per tenant; a key expires once its bucket would be full again.
        assert (await bucket.take("u")).allowed
        ttl = await redis.pttl(redis_prefix + "bucket:t")
        assert 0 < ttl <= 1500
    finally:
        await redis.aclose()


async def test_redis_down_lets_creates_through(tmp_path: Path, dead_redis_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    settings = Settings(data_dir=tmp_path, database_url=url, redis_url=dead_redis_url,
                        jwt_secret=uuid.uuid4().hex * 2, create_rate_per_minute=1)  # fmt: skip
    state = build_state(settings)
    principal = Principal(sub="op-1", tenant_id=str(uuid.uuid4()), role="operator")
    try:
        for _ in range(3):
            assert await limit_creates(principal, state) is principal
    finally:
        assert state.redis is not None
        await state.redis.aclose()
        state.engine.dispose()


def test_buckets_are_scoped_to_the_database() -> None:
    a, b = namespace("sqlite:////a/fiberflow.db"), namespace("postgresql://ff@db:5432/ff")
    assert a != b and a == namespace("sqlite:////a/fiberflow.db")
    assert "ff@db" not in b
