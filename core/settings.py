"""The one settings class. Every value comes from ``FIBERFLOW_*`` environment variables.

A process that joins a running ``fiberflow up`` (``fiberflow api --data-dir X``,
``fiberflow worker``) also reads ``X/stack.json``, which ``up`` writes with the
addresses it chose; an explicit environment variable always wins.
"""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fiberflow.core import blackout

# Keys people paste from tutorials; refusing them keeps a demo key out of production.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "your-secret-key", "dev", "test", "jwt-secret"}
)
MIN_JWT_SECRET_BYTES = 32
STACK_FILE = "stack.json"


class ConfigError(ValueError):
    """A setting is missing or wrong. ``setting`` names the environment variable."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIBERFLOW_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql://USER@HOST:PORT/DB or sqlite:///PATH; default: `up` runs a "
        "PostgreSQL of its own under DATA_DIR (stack/postgres_server.py)",
    )
    redis_url: str | None = Field(
        default=None, description="redis://HOST:PORT/DB; default: a Redis server of our own"
    )
    data_dir: Path = Path(".fiberflow")
    # Kept across data dirs: pristine, migrated embedded PostgreSQL clusters that a fresh
    # `up` copies instead of running initdb and the migrations (stack/cluster_cache.py).
    cache_dir: Path = Field(default_factory=lambda: _user_cache_dir() / "fiberflow")
    jwt_secret: SecretStr | None = None
    # Explicit opt-in for a generated, persisted JWT key (make demo, local hacking).
    dev_mode: bool = False
    inventory: Path | None = None
    event_retention_seconds: int = Field(default=3600, gt=0)
    sse_max_connections_per_tenant: int = Field(default=100, gt=0)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Service creates per tenant per minute (token bucket in Redis; 0: no limit).
    create_rate_per_minute: int = Field(default=60, ge=0)
    prefect_api_url: str | None = None
    prefect_database_url: str | None = Field(
        default=None,
        description="database of the Prefect server `up` starts: postgresql://USER@HOST:PORT/DB "
        "(an empty database of its own) or sqlite:///PATH; default: the `prefect` database "
        "of the embedded PostgreSQL",
    )
    # Seconds between the API's checks for services whose flow run died (0: off).
    reconcile_interval_seconds: float = Field(default=15.0, ge=0)
    # How long provisioning's test step waits for a new ONT to report online.
    ont_online_timeout_seconds: float = Field(default=30.0, gt=0)
    # Optical acceptance: an ONT receiving less than this (dBm) fails the testing step of
    # provisioning and ONT replacement. -27 dBm is the GPON class B+ receiver sensitivity.
    min_rx_power_dbm: float = Field(default=-27.0, ge=-40.0, le=0.0)
    # Task retries on transient device errors (timeouts, dropped sessions).
    task_retries: int = Field(default=3, ge=0, le=10)
    task_retry_delay_seconds: float = Field(default=1.0, ge=0)
    # How the worker starts a flow run's process: "warm" forks it from a server that
    # imported Prefect and the flows once (core/worker.py); "cold" is Prefect's stock
    # process worker (a fresh `python -m prefect.engine` per run).
    worker_mode: Literal["warm", "cold"] = "warm"
    # CPU priority (nice) of the worker ``up`` starts and of its flow runs, which inherit
    # it. The API, Redis and the databases stay at the user's own: on one machine a burst
    # of flow runs then waits for the CPU before the relay, the first progress event of
    # a new order and the events' own writes do (0: the same priority as the rest).
    worker_nice: int = Field(default=10, ge=0, le=19)
    # Bulk runs: services started per minute, at a steady pace (60: one a second).
    bulk_rate: float = Field(default=60.0, gt=0)
    # A bulk run keeps at most this many of its services in flight per device for each of
    # the device's sessions (max_sessions). A run holds a device's session for a part of
    # its time only (the device slots bound the sessions themselves); the cap keeps a
    # batch on a slow device from queueing its runs on those slots.
    bulk_runs_per_session: int = Field(default=4, ge=1, le=64)
    # Blackout windows in UTC (core/blackout.py), e.g. "Sat 00:00-Mon 06:00,*-12-24":
    # a bulk run holds at ``scheduled`` while one covers now. Empty: none.
    bulk_blackout: str = ""
    # Four-eyes: a bulk run of more services than this (and any bulk termination) waits
    # for another operator's approval, for at most bulk_approval_timeout_seconds.
    approval_threshold: int = Field(default=50, ge=0)
    bulk_approval_timeout_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    # Who sends a stored event to Redis. "api": on PostgreSQL the storing transaction
    # NOTIFYs and the API (LISTEN) sends it, so a flow run's process only commits the row
    # and its own wait for a core stays off the customer's latency; the API must be
    # running for events to reach Redis (its outbox flusher sends anything missed).
    # "run": the process that stored it sends it after its commit. On SQLite (no NOTIFY)
    # the storing process always sends.
    event_sender: Literal["api", "run"] = "run"
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("bulk_blackout")
    @classmethod
    def _blackout_parses(cls, v: str) -> str:
        blackout.parse(v)  # BlackoutError (a ValueError) names the malformed part
        return v

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    # -- derived values -------------------------------------------------------------
    def blackout_windows(self) -> tuple[blackout.Window, ...]:
        return blackout.parse(self.bulk_blackout)

    @property
    def stack(self) -> dict[str, Any]:
        """What a running ``fiberflow up`` with this data dir published, or {}."""
        path = self.data_dir / STACK_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def effective_database_url(self) -> str:
        return (
            self.database_url
            or self.stack.get("database_url")
            or f"sqlite:///{self.data_dir / 'fiberflow.db'}"
        )

    def effective_redis_url(self) -> str | None:
        return self.redis_url or self.stack.get("redis_url")

    def effective_prefect_api_url(self) -> str | None:
        return self.prefect_api_url or self.stack.get("prefect_api_url")

    def effective_inventory(self) -> Path | None:
        if self.inventory is not None:
            return self.inventory
        stacked = self.stack.get("inventory")
        return Path(stacked) if stacked else None

    def jwt_key(self) -> str:
        """The HS256 key. Refuses a missing, short or placeholder key outside dev mode."""
        if self.jwt_secret is not None:
            key = self.jwt_secret.get_secret_value()
            if key.strip().lower() in PLACEHOLDER_SECRETS:
                raise ConfigError("FIBERFLOW_JWT_SECRET", "is a placeholder; set a random key")
            if len(key.encode()) < MIN_JWT_SECRET_BYTES:
                raise ConfigError(
                    "FIBERFLOW_JWT_SECRET", f"must be at least {MIN_JWT_SECRET_BYTES} bytes"
                )
            return key
        if not self.dev_mode:
            raise ConfigError(
                "FIBERFLOW_JWT_SECRET",
                "is not set (set a random key of 32+ bytes, or FIBERFLOW_DEV_MODE=1 for a lab)",
            )
        return self._dev_jwt_key()

    def _dev_jwt_key(self) -> str:
        # Dev mode: one random key per data dir, shared by every process of the stack.
        path = self.data_dir / "dev-jwt-secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key


def _user_cache_dir() -> Path:
    """$XDG_CACHE_HOME, or ~/.cache (the XDG default)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
