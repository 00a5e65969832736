"""Process-wide resources of one API process, created in the app lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.core.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis | None
    jwt_key: str
    # Filled by feature modules (the SSE hub, the inventory) at start-up.
    extras: dict[str, Any] = field(default_factory=dict)
