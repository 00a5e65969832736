"""``fiberflow up``: the whole local stack in the foreground, stopped together.

Order: preflight checks; Redis (embedded unless configured) with the embedded
PostgreSQL (a copy of the cached template when the data dir has no cluster yet,
stack/cluster_cache.py) and the migrations; then the Prefect server (its own
PREFECT_HOME under the data dir), the lab and the API together; once Prefect answers,
the worker and the deployments' registration together (``Stack.run``). What
``up`` chose is published in ``<data-dir>/stack.json`` so ``fiberflow api|worker`` given
the same data dir join this stack, and ``/healthz`` knows what to wait for.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from sqlalchemy.engine import make_url

from fiberflow.core.db.engine import normalize_url
from fiberflow.core.db.migrate import upgrade
from fiberflow.core.metrics import MULTIPROC_ENV, metrics_dir, reset_metrics_dir
from fiberflow.core.settings import STACK_FILE, ConfigError, Settings
from fiberflow.flows.deployments import WORK_POOL
from fiberflow.stack import preflight
from fiberflow.stack.cluster_cache import ClusterCache, TemplateKey, current_key
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
#: How long a fresh ``up`` waits for another one building the same PostgreSQL template
#: before it makes its cluster itself (without keeping it).
TEMPLATE_LOCK_TIMEOUT = 180.0


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

    def _child_env(self, prefect_api_url: str | None = None, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(prefect_env(self.data_dir, prefect_api_url or self.info.get("prefect_api_url")))
        env["FIBERFLOW_DATA_DIR"] = str(self.data_dir)
        env[MULTIPROC_ENV] = str(metrics_dir(self.data_dir))  # metrics add up (core/metrics)
        env.update(extra)
        return env

    def start_postgres(self) -> EmbeddedPostgres | None:
        """The embedded PostgreSQL, unless both databases are configured. A new cluster
        is a copy of the cached template when there is one (stack/cluster_cache.py);
        otherwise it is made here, and the first to make one keeps a copy in the cache."""
        if self.settings.database_url and self.settings.prefect_database_url:
            return None
        pg = EmbeddedPostgres(self.data_dir, free_port())
        try:
            user = run_as()
            if (pg.cluster / "PG_VERSION").exists():
                self._start_cluster(pg, user)
                log.info("PostgreSQL cluster: the one in %s", pg.cluster)
            else:
                self._new_cluster(pg, user)
        except (EmbeddedPostgresError, OSError, subprocess.CalledProcessError) as exc:
            raise StackError(f"the embedded PostgreSQL could not start: {exc}") from None
        return pg

    def _start_cluster(self, pg: EmbeddedPostgres, user: str | None) -> Child:
        ensure_cluster(pg, user)  # initdb when there is no cluster yet
        child = self.sup.start("postgres", pg.command(), env=self._child_env(), user=user)
        self._wait("postgres", pg.ready, 60)
        pg.create_databases()
        return child

    def _new_cluster(self, pg: EmbeddedPostgres, user: str | None) -> None:
        cache = ClusterCache(self.settings.cache_dir)
        key = current_key()
        if self._cluster_from_cache(pg, user, cache, key):
            return
        # Stacks starting together build one template: the others wait, then copy it.
        with cache.build_lock(key, TEMPLATE_LOCK_TIMEOUT) as building:
            if building and self._cluster_from_cache(pg, user, cache, key):
                return
            child = self._start_cluster(pg, user)
            log.info("PostgreSQL cluster: initdb in %s", pg.cluster)
            if building:
                self._make_template(pg, user, child, cache, key)

    def _cluster_from_cache(
        self, pg: EmbeddedPostgres, user: str | None, cache: ClusterCache, key: TemplateKey
    ) -> bool:
        """Start a copy of the cached template; False (and no cluster left) if there is
        none or it does not start: the caller then makes one the slow way."""
        if not cache.copy_into(key, pg.cluster):
            return False
        try:
            self._start_cluster(pg, user)
        except (StackError, EmbeddedPostgresError, OSError, psycopg.Error) as exc:
            dead = self.sup.dead()
            if dead is not None and dead.name != "postgres":
                raise  # not the cluster's fault
            log.warning("the cached PostgreSQL cluster %s did not start (%s); discarding it",
                        cache.entry(key), str(exc).splitlines()[0])  # fmt: skip
            for child in [c for c in self.sup.children if c.name == "postgres"]:
                self.sup.stop(child, signal.SIGKILL, 5)
            shutil.rmtree(pg.cluster, ignore_errors=True)
            cache.discard(key)
            return False
        log.info("PostgreSQL cluster: a copy of the template %s", cache.entry(key))
        return True

    def _make_template(
        self,
        pg: EmbeddedPostgres,
        user: str | None,
        child: Child,
        cache: ClusterCache,
        key: TemplateKey,
    ) -> None:
        """Migrate both databases of the new cluster, stop it cleanly, keep a copy in the
        cache and start it again. A failure here only means no template this time."""
        try:
            upgrade(pg.url("fiberflow"))
            env = self._child_env()
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database_url(pg.url("prefect"))
            argv = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
            migrate = self.sup.start("prefect-migrate", argv, env=env)
            code = self._wait_exit(migrate, 300)
        except (StackError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the start goes on; its own migrations will tell
            log.warning("no PostgreSQL template this time: %s", exc)
            return
        if code != 0:
            log.warning("Prefect's migrations failed (see %s); no template kept", migrate.log_path)
            return
        # SIGINT: PostgreSQL's fast shutdown, a clean checkpoint. A copy of a cluster that
        # was not stopped cleanly would start with crash recovery: not kept.
        if self.sup.stop(child, signal.SIGINT, 60) == 0 and cache.publish(key, pg.cluster):
            log.info("PostgreSQL cluster: kept as the template %s", cache.entry(key))
        self._start_cluster(pg, user)

    def launch_redis(self) -> Callable[[], str] | None:
        """Start the embedded Redis, unless one is configured; returns a wait for it."""
        if self.settings.redis_url:
            return None
        port = free_port()
        self.sup.start("redis", redis_command(self.data_dir, port))
        url = f"redis://127.0.0.1:{port}/0"

        def ready() -> str:
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            self._wait("redis", lambda: bool(client.ping()), 20)
            client.close()
            return url

        return ready

    def launch_prefect(self) -> str:
        """Start the Prefect server; returns its API URL (not ready yet)."""
        port = self.opts.prefect_port
        argv = [sys.executable, "-m", "prefect", "server", "start"]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        api_url = f"http://127.0.0.1:{port}/api"
        env = self._child_env(api_url)
        if self.prefect_db_url:
            # Only the server gets it: the URL may carry a password.
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database_url(self.prefect_db_url)
        self.sup.start("prefect-server", argv, env=env)
        return api_url

    def wait_prefect(self, api_url: str) -> None:
        self._wait("prefect-server", lambda: _http_ok(f"{api_url}/health"), READY_TIMEOUT)

    def launch_api(self, prefect_api_url: str) -> str:
        """Start the API; returns its URL. It needs the database and Redis, not the Prefect
        server (its launches answer 503 until that is up, and /healthz says "starting"),
        so it starts with the Prefect server rather than after it."""
        port = self.opts.api_port
        argv = [sys.executable, "-m", "fiberflow.stack.cli", "api", "--port", str(port)]
        argv += ["--host", self.opts.host, "--data-dir", str(self.data_dir)]
        env = self._child_env(prefect_api_url, FIBERFLOW_PREFECT_API_URL=prefect_api_url)
        self.sup.start("api", argv, env=env)
        return f"http://{self.opts.host}:{port}"

    def wait_api(self, url: str) -> None:
        # The API answers 503 until the rest is ready; here we only wait for it to listen.
        self._wait("api", lambda: _http_answers(f"{url}/healthz"), 60)

    def launch_lab(self) -> Path:
        """Start the device lab (when no inventory is configured): it needs the database
        only. Returns the file it writes once ready."""
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
        return lab_file

    def wait_lab(self, lab_file: Path) -> str:
        """Wait for the lab; returns its inventory path."""
        self._wait("lab", lab_file.exists, 60)
        lab = json.loads(lab_file.read_text())
        # /healthz connects to each: only the SSH devices (RADIUS and NAS are UDP).
        tcp = [d["port"] for d in lab["devices"] if d.get("transport") == "tcp"]
        self.publish(lab_ports=tcp)
        return str(lab["inventory"])

    def ensure_work_pool(self, api_url: str) -> None:
        """Create the process work pool (if missing) over HTTP, so that the worker and the
        deployments' registration can start together without both creating it."""
        resp = httpx.post(
            f"{api_url}/work_pools/", json={"name": WORK_POOL, "type": "process"}, timeout=30
        )
        if resp.status_code not in (200, 201, 409):  # 409: there already
            raise StackError(f"creating the work pool {WORK_POOL} failed: {resp.status_code} "
                             f"{resp.text[:200]}")  # fmt: skip

    def launch_deploy(self, inventory: str | None) -> Child:
        env = self._child_env(**({"FIBERFLOW_INVENTORY": inventory} if inventory else {}))
        argv = [
            sys.executable,
            "-m",
            "fiberflow.stack.cli",
            "deploy",
            "--data-dir",
            str(self.data_dir),
        ]
        return self.sup.start("deploy", argv, env=env)

    def wait_deploy(self, child: Child) -> None:
        if self._wait_exit(child, 180) != 0:
            raise StackError(f"registering deployments failed (see {child.log_path})")

    def launch_worker(self) -> None:
        env = self._child_env(**WORKER_ENV)
        argv = worker_argv(f"up-worker-{os.getpid()}", self.settings.worker_mode)
        self.sup.start("worker", argv, env=env, nice=self.settings.worker_nice)

    def wait_worker(self) -> None:
        api = self.info["prefect_api_url"]

        def polling() -> bool:
            resp = httpx.post(f"{api}/work_pools/{WORK_POOL}/workers/filter", json={}, timeout=2)
            return any(w.get("status") == "ONLINE" for w in resp.json())

        self._wait("worker", polling, 90)

    def _wait(self, name: str, probe: Callable[[], bool], timeout: float) -> None:
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self._stop:
                raise KeyboardInterrupt
            dead = self.sup.dead()
            if dead is not None:
                raise StackError(f"{dead.name} exited early (see {dead.log_path}):\n{dead.tail()}")
            try:
                if probe():
                    log.info("%s ready (waited %.1f s)", name, time.monotonic() - started)
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.2)
        raise StackError(f"{name} was not ready within {timeout:.0f} s")

    def _wait_exit(self, child: Child, timeout: float) -> int:
        """Wait for a short-lived ``child`` to exit (killed after ``timeout`` s, -9) while
        watching the others; returns its exit code."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            self._wait(child.name, lambda: child.proc.poll() is not None, timeout)
        except StackError:
            if child.proc.poll() is None:  # the time is up, or another child died
                self.sup.stop(child, signal.SIGKILL, 5)
                if self.sup.dead() is not None:
                    raise
                return -9
            if self.sup.dead() not in (None, child):
                raise
        self.sup.forget(child)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        log.info("%s exited with %d (%.1f CPU-s)", child.name, child.proc.returncode, cpu)
        return child.proc.returncode

    def run(self, on_ready: Callable[[dict[str, Any]], None]) -> int:
        """Start everything, call ``on_ready``, then serve until a signal. Returns exit code.

        What waits for what: the database (and its migrations) for everything but Redis;
        the API and the lab for the database (and Redis); the deployments for the
        Prefect server and the lab's inventory; the worker for the Prefect server's work
        pool. Whatever does not wait for another starts at the same time."""
        db_url = self.preflight()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            reset_metrics_dir(metrics_dir(self.data_dir))
            redis_ready = self.launch_redis()
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
            self.publish(redis_url=redis_ready() if redis_ready else self.settings.redis_url)
            prefect_api_url = self.launch_prefect()
            lab_file = self.launch_lab() if inventory is None else None
            api_url = self.launch_api(prefect_api_url)
            self.wait_prefect(prefect_api_url)
            self.publish(prefect_api_url=prefect_api_url)
            self.ensure_work_pool(prefect_api_url)
            self.launch_worker()
            if lab_file is not None:
                inventory = self.wait_lab(lab_file)
            self.publish(inventory=inventory)
            deploying = self.launch_deploy(inventory)
            self.wait_api(api_url)
            self.publish(api_url=api_url, ui_url=f"http://127.0.0.1:{self.opts.prefect_port}")
            self.wait_deploy(deploying)
            self.publish(deployments_ready=True)
            self.wait_worker()
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
