"""``fiberflow up``: the whole local stack in the foreground, stopped together.

Order: preflight checks, Redis (embedded unless configured), database migrations, the
Prefect server (its own PREFECT_HOME and SQLite under the data dir), then the API. What
``up`` chose is published in ``<data-dir>/stack.json`` so ``fiberflow api|worker`` given
the same data dir join this stack, and ``/healthz`` knows what to wait for.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy.engine import make_url

from fiberflow.core.db.engine import normalize_url
from fiberflow.core.db.migrate import upgrade
from fiberflow.core.metrics import MULTIPROC_ENV, metrics_dir, reset_metrics_dir
from fiberflow.core.settings import STACK_FILE, ConfigError, Settings
from fiberflow.flows.deployments import WORK_POOL
from fiberflow.stack import preflight
from fiberflow.stack.postgres_server import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    ensure_cluster,
    run_as,
)
from fiberflow.stack.procs import Child, Supervisor, free_port
from fiberflow.stack.redis_server import redis_command

log = logging.getLogger(__name__)
READY_TIMEOUT = 90.0
MAX_WORKER_RESTARTS = 20


class StackError(RuntimeError):
    """A part of the stack failed to start; the message says which and why."""


@dataclass
class UpOptions:
    api_port: int = 8000
    prefect_port: int = 4200
    host: str = "127.0.0.1"


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


class Stack:
    def __init__(self, settings: Settings, opts: UpOptions) -> None:
        self.settings = settings
        self.opts = opts
        self.data_dir = settings.data_dir
        self.sup = Supervisor(self.data_dir / "logs")
        self.info: dict[str, Any] = {}
        self._stop = False
        self.prefect_db_url = settings.prefect_database_url

    # -- stack.json -------------------------------------------------------------------
    def publish(self, **values: Any) -> None:
        self.info.update(values)
        self.info["children"] = {c.name: c.pid for c in self.sup.children}
        path = self.data_dir / STACK_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2))
        os.replace(tmp, path)

    # -- start-up ---------------------------------------------------------------------
    def preflight(self) -> str | None:
        """Checks what the settings name; returns the project database URL, or None for
        the embedded PostgreSQL."""
        s = self.settings
        preflight.data_dir(self.data_dir)
        preflight.port_free("--api-port", self.opts.api_port)
        preflight.port_free("--prefect-port", self.opts.prefect_port)
        if self.opts.api_port == self.opts.prefect_port:
            raise ConfigError("--prefect-port", "must differ from --api-port")
        s.jwt_key()
        db_url = s.database_url
        if db_url:
            preflight.database(db_url)
        if s.prefect_database_url:
            prefect_database_url(s.prefect_database_url)  # refuses what asyncpg can't take
            preflight.database(s.prefect_database_url, "FIBERFLOW_PREFECT_DATABASE_URL")
        if s.redis_url:
            preflight.redis_url(s.redis_url)
        if s.inventory is not None:
            from fiberflow.devices.inventory import InventoryError, load_inventory

            try:
                load_inventory(s.inventory)
            except InventoryError as exc:
                raise ConfigError("FIBERFLOW_INVENTORY", str(exc)) from None
        return db_url

    def _child_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(prefect_env(self.data_dir, self.info.get("prefect_api_url")))
        env["FIBERFLOW_DATA_DIR"] = str(self.data_dir)
        env[MULTIPROC_ENV] = str(metrics_dir(self.data_dir))  # metrics add up (core/metrics)
        env.update(extra)
        return env

    def start_postgres(self) -> EmbeddedPostgres | None:
        """The embedded PostgreSQL, unless both databases are configured."""
        if self.settings.database_url and self.settings.prefect_database_url:
            return None
        pg = EmbeddedPostgres(self.data_dir, free_port())
        try:
            user = run_as()
            ensure_cluster(pg, user)
        except (EmbeddedPostgresError, OSError, subprocess.CalledProcessError) as exc:
            raise StackError(f"the embedded PostgreSQL could not start: {exc}") from None
        self.sup.start("postgres", pg.command(), env=self._child_env(), user=user)
        self._wait("postgres", pg.ready, 60)
        pg.create_databases()
        return pg

    def start_redis(self) -> str:
        if self.settings.redis_url:
            return self.settings.redis_url
        port = free_port()
        self.sup.start("redis", redis_command(self.data_dir, port))
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._wait("redis", lambda: bool(client.ping()), 20)
        client.close()
        return url

    def start_prefect(self) -> str:
        port = self.opts.prefect_port
        api_url = f"http://127.0.0.1:{port}/api"
        argv = [sys.executable, "-m", "prefect", "server", "start"]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        env = self._child_env()
        if self.prefect_db_url:
            # Only the server gets it: the URL may carry a password.
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database_url(self.prefect_db_url)
        self.sup.start("prefect-server", argv, env=env)
        self._wait("prefect-server", lambda: _http_ok(f"{api_url}/health"), READY_TIMEOUT)
        return api_url

    def start_api(self) -> str:
        port = self.opts.api_port
        argv = [sys.executable, "-m", "fiberflow.stack.cli", "api", "--port", str(port)]
        argv += ["--host", self.opts.host, "--data-dir", str(self.data_dir)]
        self.sup.start("api", argv, env=self._child_env())
        url = f"http://{self.opts.host}:{port}"
        # The API answers 503 until the rest is ready; here we only wait for it to listen.
        self._wait("api", lambda: _http_answers(f"{url}/healthz"), 60)
        return url

    def start_lab(self) -> str:
        """The device lab, when no inventory is configured. Returns the inventory path."""
        lab_file = self.data_dir / "lab.json"
        lab_file.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "fiberflow.stack.cli",
            "lab",
            "--data-dir",
            str(self.data_dir),
        ]
        self.sup.start("lab", argv, env=self._child_env())
        self._wait("lab", lab_file.exists, 60)
        lab = json.loads(lab_file.read_text())
        # /healthz connects to each: only the SSH devices (RADIUS and NAS are UDP).
        tcp = [d["port"] for d in lab["devices"] if d.get("transport") == "tcp"]
        self.publish(lab_ports=tcp)
        return str(lab["inventory"])

    def deploy(self, inventory: str | None) -> None:
        env = self._child_env(**({"FIBERFLOW_INVENTORY": inventory} if inventory else {}))
        argv = [
            sys.executable,
            "-m",
            "fiberflow.stack.cli",
            "deploy",
            "--data-dir",
            str(self.data_dir),
        ]
        proc = self.sup.run_once("deploy", argv, env=env, timeout=180)
        if proc != 0:
            raise StackError(f"registering deployments failed (see {self.sup.log_dir}/deploy.log)")

    def start_worker(self) -> None:
        env = self._child_env(**WORKER_ENV)
        argv = worker_argv(f"up-worker-{os.getpid()}", self.settings.worker_mode)
        self.sup.start("worker", argv, env=env, nice=self.settings.worker_nice)
        api = self.info["prefect_api_url"]

        def polling() -> bool:
            resp = httpx.post(f"{api}/work_pools/{WORK_POOL}/workers/filter", json={}, timeout=2)
            return any(w.get("status") == "ONLINE" for w in resp.json())

        self._wait("worker", polling, 90)

    def _wait(self, name: str, probe: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stop:
                raise KeyboardInterrupt
            dead = self.sup.dead()
            if dead is not None:
                raise StackError(f"{dead.name} exited early (see {dead.log_path}):\n{dead.tail()}")
            try:
                if probe():
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.2)
        raise StackError(f"{name} was not ready within {timeout:.0f} s")

    def run(self, on_ready: Callable[[dict[str, Any]], None]) -> int:
        """Start everything, call ``on_ready``, then serve until a signal. Returns exit code."""
        db_url = self.preflight()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            reset_metrics_dir(metrics_dir(self.data_dir))
            embedded = self.start_postgres()
            if embedded is not None:
                db_url = db_url or embedded.url("fiberflow")
                self.prefect_db_url = self.prefect_db_url or embedded.url("prefect")
            assert db_url is not None
            upgrade(db_url)
            inventory = str(self.settings.inventory) if self.settings.inventory else None
            expect = ["prefect", "worker", "deployments"] + ([] if inventory else ["lab"])
            self.publish(
                pid=os.getpid(),
                data_dir=str(self.data_dir),
                database_url=db_url,
                expect=expect,
            )
            self.publish(redis_url=self.start_redis())
            self.publish(prefect_api_url=self.start_prefect())
            api_url = self.start_api()
            self.publish(api_url=api_url, ui_url=f"http://127.0.0.1:{self.opts.prefect_port}")
            if inventory is None:
                inventory = self.start_lab()
            self.publish(inventory=inventory)
            self.deploy(inventory)
            self.publish(deployments_ready=True)
            self.start_worker()
            self.publish(worker_ready=True)
            on_ready(self.info)
            while not self._stop:
                dead = self.sup.dead()
                if dead is not None:
                    self._handle_exit(dead)
                time.sleep(0.5)
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            self.shutdown()

    def _handle_exit(self, dead: Child) -> None:
        """A worker that dies (killed, OOM) is restarted; the reconciler then fails and
        compensates what its runs left. Any other part dying stops the stack."""
        self._restarts = getattr(self, "_restarts", 0) + 1
        if dead.name != "worker" or self._restarts > MAX_WORKER_RESTARTS:
            raise StackError(f"{dead.name} exited (see {dead.log_path}):\n{dead.tail()}")
        log.warning("worker exited with %s; restarting", dead.proc.returncode)
        self.sup.restart(dead)
        self.publish()

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self._stop = True

    def shutdown(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.sup.stop_all()
        (self.data_dir / STACK_FILE).unlink(missing_ok=True)


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def _http_answers(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code in (200, 503)
