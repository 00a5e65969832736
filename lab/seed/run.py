"""A seed from start to end: check the input, find the lab, read what is taken, plan,
then write every store all or nothing.

The order makes the one transaction per store line up: the database rows (services,
allocations, RADIUS) are inserted and flushed inside one transaction first, so its
constraints speak before any device changes; then each device takes its part in one
atomic admin ``seed``; the transaction commits last. A device refusing rolls the
transaction back and unseeds the devices that took theirs; a failing commit unseeds
them all.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.settings import ConfigError
from fiberflow.lab.seed import on_devices, store
from fiberflow.lab.seed.errors import SeedFailed, SeedRefused
from fiberflow.lab.seed.plan import Planned, Taken, plan_services
from fiberflow.lab.seed.target import LabTarget, find_lab


@dataclass
class SeedPlan:
    target: LabTarget
    database_url: str
    tenant_id: str
    services: list[Planned]
    seconds: dict[str, float] = field(default_factory=dict)  # time per phase


@dataclass(frozen=True)
class SeedResult:
    services: int
    tenant_id: str
    per_device: dict[str, int]  # services per OLT and per BNG
    seconds: dict[str, float]  # read, plan, database, devices, commit


def check_tenant(tenant: str) -> str:
    try:
        return str(uuid.UUID(tenant))
    except ValueError:
        raise SeedRefused(f"--tenant: {tenant!r} is not a UUID") from None


def plan_seed(data_dir: Path, database_url: str, n: int, tenant: str) -> SeedPlan:
    """Check the input, read what the running lab and its database hold, place N
    services. SeedRefused (nothing written) on bad input, no lab or no room."""
    if n <= 0:
        raise SeedRefused(f"--services: must be at least 1, not {n}")
    tenant_id = check_tenant(tenant)
    target = find_lab(data_dir)
    target.check_database(database_url)
    started = time.monotonic()
    taken = Taken()
    engine = _engine(database_url)
    try:
        with Session(engine) as s:
            store.read_taken(s, target.inventory, taken)
    except SQLAlchemyError as exc:
        raise SeedRefused(f"database: {_reason(exc)}") from None
    finally:
        engine.dispose()
    try:
        on_devices.read_taken(target, target.inventory, taken)
    except SeedFailed as exc:
        raise SeedRefused(f"the running lab does not answer: {exc}") from None
    read = time.monotonic()
    services = plan_services(n, tenant_id, target.inventory, taken)
    seconds = {"read": read - started, "plan": time.monotonic() - read}
    return SeedPlan(target, database_url, tenant_id, services, seconds)


def apply_seed(plan: SeedPlan) -> SeedResult:
    """Write the planned services to every store, all or nothing: SeedFailed (and
    nothing left behind) if a store refuses."""
    seconds = dict(plan.seconds)
    calls = on_devices.payloads(plan.services)
    inv, target = plan.target.inventory, plan.target
    engine = _engine(plan.database_url)
    touched: list[str] = []
    try:
        with Session(engine) as s:
            t0 = time.monotonic()
            with s.begin():
                pools = store.lock_pools(s, inv)
                store.insert_rows(s, plan.tenant_id, plan.services, pools)
                t1 = time.monotonic()
                touched = list(calls)  # from here on, a device may hold its part
                try:
                    on_devices.seed(target, calls)
                except on_devices.DevicesFailed as exc:
                    touched = exc.touched
                    raise
                t2 = time.monotonic()
            seconds |= {"database": t1 - t0, "devices": t2 - t1, "commit": time.monotonic() - t2}
    except BaseException as exc:
        left = on_devices.unseed(target, {n: calls[n] for n in touched}) if touched else []
        suffix = f"; rolling the devices back failed too: {' / '.join(left)}" if left else ""
        if isinstance(exc, SeedFailed):
            raise SeedFailed(f"{exc}; nothing was written{suffix}") from None
        if isinstance(exc, SQLAlchemyError):
            raise SeedFailed(f"database: {_reason(exc)}; nothing was written{suffix}") from None
        raise
    finally:
        engine.dispose()
    per_device = Counter(p.olt for p in plan.services) + Counter(p.bng for p in plan.services)
    return SeedResult(len(plan.services), plan.tenant_id, dict(per_device), seconds)


def seed_services(data_dir: Path, database_url: str, n: int, tenant: str) -> SeedResult:
    """``fiberflow lab seed``: plan and apply."""
    return apply_seed(plan_seed(data_dir, database_url, n, tenant))


def _engine(url: str) -> Engine:
    try:
        return make_engine(url)
    except ConfigError as exc:
        raise SeedRefused(str(exc)) from None


def _reason(exc: SQLAlchemyError) -> str:
    # Never str(exc): SQLAlchemy appends the bound parameters (RADIUS passwords).
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig).splitlines()[0]
    return type(exc).__name__
