"""Per-process resources of a flow run: settings, database, inventory, event publisher.

A process worker starts one Python process per flow run; these are built once in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.core.db.engine import make_engine, session_factory
from fiberflow.core.settings import Settings, get_settings
from fiberflow.devices.inventory import Inventory, load_inventory
from fiberflow.events.publisher import EventPublisher, connect_sync, sent_by_api


class NoInventory(RuntimeError):
    pass


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    publisher: EventPublisher

    @property
    def inventory(self) -> Inventory:
        return _inventory(str(self.settings.effective_inventory()))


@lru_cache(maxsize=8)
def _inventory(path: str) -> Inventory:
    if path == "None":
        raise NoInventory("no inventory: set FIBERFLOW_INVENTORY or run under `fiberflow up`")
    return load_inventory(path)


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    settings = get_settings()
    engine = make_engine(settings.effective_database_url())
    sessions = session_factory(engine)
    redis_url = settings.effective_redis_url()
    publisher = EventPublisher(
        sessions,
        connect_sync(redis_url) if redis_url else None,
        retention_seconds=settings.event_retention_seconds,
        # On PostgreSQL the API sends what this process stores (events/outbox.py).
        notify=sent_by_api(settings, engine),
    )
    return Runtime(settings=settings, engine=engine, sessions=sessions, publisher=publisher)


def reset_runtime() -> None:
    """Forget cached resources (tests that switch databases in one process)."""
    if runtime.cache_info().currsize:
        rt = runtime()
        rt.publisher.close()
        rt.engine.dispose()
    runtime.cache_clear()
    _inventory.cache_clear()
