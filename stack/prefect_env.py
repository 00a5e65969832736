"""How the Prefect processes of a stack are configured: their environment, the Prefect
server's database URL and the worker's command line. Shared by ``up``, ``fiberflow
worker`` and the tests' and benchmarks' own Prefect servers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from fiberflow.core.db.engine import normalize_url
from fiberflow.core.settings import ConfigError
from fiberflow.flows.deployments import WORK_POOL


def prefect_database_url(url: str) -> str:
    """``FIBERFLOW_PREFECT_DATABASE_URL`` as the Prefect server's SQLAlchemy URL (asyncpg,
    aiosqlite). Query parameters are refused: libpq's (``sslmode=...``) are not asyncpg's,
    and would pass preflight (psycopg) only to stop the Prefect server at start."""
    variable = "FIBERFLOW_PREFECT_DATABASE_URL"
    parsed = make_url(normalize_url(url, variable))
    if parsed.query:
        raise ConfigError(variable, "query parameters are not supported (use Prefect's own "
                          "PREFECT_SERVER_DATABASE_* settings for TLS and the like)")  # fmt: skip
    postgres = parsed.get_backend_name() == "postgresql"
    driver = "postgresql+asyncpg" if postgres else "sqlite+aiosqlite"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def prefect_env(data_dir: Path, api_url: str | None) -> dict[str, str]:
    """Environment for every Prefect process of this stack (server, worker, flow runs)."""
    home = data_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        # A run denied a device slot is told to retry after the slot's average occupancy
        # times the queue ahead of it, capped here (Prefect's default cap: 30 s). Device
        # sessions last seconds: at 30 s slots sat idle while waiters slept
        # (bench.reprovision_bulk). Production Prefect servers want the same setting.
        "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


# Workers poll every second so a run starts within ~2 s of the API asking for it, and
# flow runs send heartbeats (Prefect's minimum, 30 s) so the reconciler can tell a run
# whose process was killed from a slow one.
WORKER_ENV = {
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_PREFETCH_SECONDS": "5",
    "PREFECT_RUNNER_HEARTBEAT_FREQUENCY": "30",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def worker_argv(name: str, mode: str = "warm") -> list[str]:
    """The worker's command line: fiberflow's warm process worker (stack/worker.py), or
    Prefect's stock process worker for ``FIBERFLOW_WORKER_MODE=cold``."""
    os.environ.update(WORKER_ENV)
    if mode == "warm":
        # -P: the current directory must not shadow the installed packages (-c puts it
        # first on sys.path, and the forkserver inherits that path).
        return [sys.executable, "-P", "-c", "from fiberflow.stack.worker import main; main()",
                "--pool", WORK_POOL, "--name", name]  # fmt: skip
    return [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL,
            "--type", "process", "--name", name]  # fmt: skip
