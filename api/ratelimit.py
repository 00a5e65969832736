"""Per-tenant rate limit on creates: a token bucket in Redis, shared by every API replica.

Each tenant's bucket holds up to ``FIBERFLOW_CREATE_RATE_PER_MINUTE`` tokens and refills
at that rate; a create takes one, an empty bucket answers 429 with ``Retry-After`` (the
seconds until a token is back). The bucket lives in Redis under a key scoped to the
database the API serves (tenants exist per database), so every replica of one
deployment shares it and stacks that share one Redis do not. The check runs after
authentication and the role check (401/403 come first) and counts every create
attempt an operator makes, valid or not.

Redis unreachable: the create is let through and a warning logged (availability of
orders over strictness of the limit; the orchestrator and the database still bound the
load).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, status
from redis.asyncio import Redis
from redis.exceptions import RedisError

from fiberflow.api.deps import OperatorDep, StateDep
from fiberflow.api.state import AppState
from fiberflow.core.tokens import Principal

log = logging.getLogger(__name__)
BUCKET = "create_rate_bucket"
KEY_PREFIX = "fiberflow:ratelimit"

# KEYS[1] bucket; ARGV[1] capacity, ARGV[2] tokens per second.
# Returns {allowed (0/1), seconds until a token is back, tokens left} (numbers as text:
# Lua numbers would come back truncated to integers). Redis's clock, not the replica's.
_TAKE = """
redis.replicate_commands()
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or capacity
local ts = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {allowed, tostring(wait), tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until the next token (0 when allowed)
    remaining: float


class TokenBucket:
    """``per_minute`` tokens a minute per key, at most ``burst`` (default ``per_minute``)."""

    def __init__(
        self, redis: Redis, *, per_minute: int, burst: int | None = None, prefix: str = KEY_PREFIX
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self.burst = burst if burst is not None else per_minute
        self.prefix = prefix
        self._script = redis.register_script(_TAKE)

    async def take(self, key: str) -> Decision:
        raw = await self._script(
            keys=[f"{self.prefix}:{key}"], args=[self.burst, self.per_minute / 60.0]
        )
        allowed, wait, left = raw
        return Decision(bool(int(allowed)), float(wait), float(left))


def namespace(database_url: str) -> str:
    """A short, stable tag of the database the API serves (no credentials in the key)."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:16]


def _bucket(state: AppState) -> TokenBucket | None:
    per_minute = state.settings.create_rate_per_minute
    if per_minute <= 0 or state.redis is None:
        return None
    bucket = state.extras.get(BUCKET)
    if not isinstance(bucket, TokenBucket):
        scope = namespace(state.settings.effective_database_url())
        bucket = TokenBucket(
            state.redis, per_minute=per_minute, prefix=f"{KEY_PREFIX}:{scope}:create"
        )
        state.extras[BUCKET] = bucket
    return bucket


async def limit_creates(principal: OperatorDep, state: StateDep) -> Principal:
    """Take one create token of the principal's tenant, or answer 429."""
    bucket = _bucket(state)
    if bucket is None:
        return principal
    try:
        decision = await bucket.take(principal.tenant_id)
    except (RedisError, OSError) as exc:
        log.warning(
            "create rate limit unavailable (Redis): letting the create through",
            extra={"tenant_id": principal.tenant_id, "error": type(exc).__name__},
        )
        return principal
    if decision.allowed:
        return principal
    retry_after = max(1, math.ceil(decision.retry_after))
    log.info(
        "create refused: tenant over its rate limit",
        extra={"tenant_id": principal.tenant_id, "status": "rate_limited"},
    )
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"too many service creates for this tenant (limit {bucket.per_minute} per minute); "
        f"retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


CreateRateLimit = Annotated[Principal, Depends(limit_creates)]
