"""Reading the relay in tests: httpx-sse's parser, with a timeout per message."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fiberflow.core.db.models import ServiceInstance
from fiberflow.core.tokens import issue

WAIT = 15.0


@dataclass
class Message:
    id: str  # the relay ids every message
    event: str
    data: dict[str, Any]


class SseReader:
    """The messages of a streaming response (heartbeat comments never surface: an SSE
    client drops them; tests of the heartbeats read the wire)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._events: AsyncIterator[ServerSentEvent] | None = None

    def _stream(self) -> AsyncIterator[ServerSentEvent]:
        if self._events is None:
            self._events = EventSource(self.response).aiter_sse()
        return self._events

    async def next(self, timeout: float = WAIT) -> Message:
        """The next message with data; TimeoutError if none comes within ``timeout``."""
        async with asyncio.timeout(timeout):
            while True:
                sse = await anext(self._stream())
                if sse.data:
                    return Message(id=sse.id, event=sse.event, data=json.loads(sse.data))

    async def take(self, n: int) -> list[Message]:
        return [await self.next() for _ in range(n)]

    async def ended(self, timeout: float = WAIT) -> bool:
        """True once the server closed the stream (messages until then are dropped)."""
        try:
            async with asyncio.timeout(timeout):
                async for _ in self._stream():
                    pass
        except (httpx.RemoteProtocolError, httpx.ReadError):
            pass
        return True


def token(key: str, tenant_id: str, role: str = "operator", sub: str = "ops") -> str:
    return issue(key, tenant_id=tenant_id, role=role, sub=sub, ttl=timedelta(minutes=10))


def auth(key: str, tenant_id: str, role: str = "operator", sub: str = "ops") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(key, tenant_id, role, sub)}"}


def make_service(engine: Engine, tenant_id: str, customer_ref: str = "cust-1") -> str:
    with Session(engine) as s, s.begin():
        row = ServiceInstance(
            tenant_id=tenant_id, customer_ref=customer_ref, plan="100M", olt="olt-1",
            pon_port="0/1/1", ont_serial=uuid.uuid4().hex[:16].upper(), status="provisioning",
        )  # fmt: skip
        s.add(row)
        s.flush()
        return row.id
