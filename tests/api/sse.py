"""A small SSE client for tests: parses a streaming httpx response into messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fiberflow.core.db.models import ServiceInstance
from fiberflow.core.tokens import issue

WAIT = 15.0


@dataclass
class Message:
    id: str | None
    event: str | None
    data: dict[str, Any]


@dataclass
class SseReader:
    response: httpx.Response
    comments: list[str] = field(default_factory=list)
    _lines: AsyncIterator[str] | None = None

    async def next(self, timeout: float = WAIT) -> Message:
        """The next message (comments are collected, not returned)."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        fields: dict[str, list[str]] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no message within {timeout} s")
            line = await asyncio.wait_for(anext(self._lines), remaining)
            if line == "":
                if "data" in fields or "event" in fields:
                    return Message(
                        id=fields.get("id", [None])[-1],
                        event=fields.get("event", [None])[-1],
                        data=json.loads("\n".join(fields["data"])),
                    )
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)

    async def take(self, n: int) -> list[Message]:
        return [await self.next() for _ in range(n)]

    async def ended(self, timeout: float = WAIT) -> bool:
        """True once the server closed the stream (messages until then are dropped)."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        try:
            while True:
                await asyncio.wait_for(anext(self._lines), timeout)
        except StopAsyncIteration:
            return True
        except (httpx.RemoteProtocolError, httpx.ReadError):
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
