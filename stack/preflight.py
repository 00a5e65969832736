"""Checks ``fiberflow up`` runs before starting anything: each failure names its setting."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fiberflow.core.db.engine import make_engine, normalize_url
from fiberflow.core.settings import ConfigError, Settings
from fiberflow.stack.prefect_env import prefect_database_url
from fiberflow.stack.procs import port_in_use


def data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            "FIBERFLOW_DATA_DIR (--data-dir)", f"{path} is not writable ({exc.strerror})"
        ) from None


def port_free(option: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(option, f"{port} is not a TCP port")
    if port_in_use(port):
        raise ConfigError(option, f"127.0.0.1:{port} is already in use")


def database(url: str, variable: str = "FIBERFLOW_DATABASE_URL") -> None:
    normalized = normalize_url(url, variable)  # raises ConfigError for a malformed URL
    shown = make_url(normalized).render_as_string(hide_password=True)
    if normalized.startswith("sqlite"):
        db_path = make_url(normalized).database or ""
        parent = Path(db_path).expanduser().resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(variable, f"{parent} is not a writable directory")
    engine = make_engine(normalized)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:160]
        raise ConfigError(variable, f"cannot connect to {shown}: {reason}") from None
    finally:
        engine.dispose()


def redis_url(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    except ValueError as exc:
        raise ConfigError("FIBERFLOW_REDIS_URL", f"malformed URL ({exc})") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError("FIBERFLOW_REDIS_URL", f"cannot connect: {exc}") from None
    finally:
        client.close()


def up(settings: Settings, api_port: int, prefect_port: int) -> None:
    """Everything ``up`` checks, in this order: what the settings name and its ports."""
    s = settings
    data_dir(s.data_dir)
    port_free("--api-port", api_port)
    port_free("--prefect-port", prefect_port)
    if api_port == prefect_port:
        raise ConfigError("--prefect-port", "must differ from --api-port")
    s.jwt_key()
    if s.database_url:
        database(s.database_url)
    if s.prefect_database_url:
        prefect_database_url(s.prefect_database_url)  # refuses what asyncpg can't take
        database(s.prefect_database_url, "FIBERFLOW_PREFECT_DATABASE_URL")
    if s.redis_url:
        redis_url(s.redis_url)
    if s.inventory is not None:
        from fiberflow.devices.inventory import InventoryError, load_inventory

        try:
            load_inventory(s.inventory)
        except InventoryError as exc:
            raise ConfigError("FIBERFLOW_INVENTORY", str(exc)) from None
