"""``fiberflow up``: the whole local stack in the foreground, stopped together.

Order: preflight checks (stack/preflight.py); Redis (embedded unless configured) with
the embedded PostgreSQL (stack/postgres_setup.py: a copy of the cached template when
the data dir has no cluster yet) and the migrations; then the Prefect server (its own
PREFECT_HOME under the data dir), the lab and the API together; once Prefect answers,
the worker and the deployments' registration together (``Stack.run``). What
``up`` chose is published in ``<data-dir>/stack.json`` so ``fiberflow api|worker`` given
the same data dir join this stack, and ``/healthz`` knows what to wait for. The
Prefect processes' environment is stack/prefect_env.py's; waiting for a part while
watching the others, stack/readiness.py's.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from fiberflow.core.db.migrate import upgrade
from fiberflow.core.metrics import MULTIPROC_ENV, metrics_dir, reset_metrics_dir
from fiberflow.core.settings import STACK_FILE, Settings
from fiberflow.flows.deployments import WORK_POOL
from fiberflow.stack import preflight
from fiberflow.stack.postgres_server import EmbeddedPostgres
from fiberflow.stack.postgres_setup import PostgresSetup
from fiberflow.stack.prefect_env import WORKER_ENV, prefect_database_url, prefect_env, worker_argv
from fiberflow.stack.procs import Child, Supervisor, free_port
from fiberflow.stack.readiness import Readiness, StackError, http_answers, http_ok
from fiberflow.stack.redis_server import redis_command

log = logging.getLogger(__name__)
READY_TIMEOUT = 90.0
MAX_WORKER_RESTARTS = 20


@dataclass
class UpOptions:
    api_port: int = 8000
    prefect_port: int = 4200
    host: str = "127.0.0.1"


class Stack:
    def __init__(self, settings: Settings, opts: UpOptions) -> None:
        self.settings = settings
        self.opts = opts
        self.data_dir = settings.data_dir
        self.sup = Supervisor(self.data_dir / "logs")
        self.info: dict[str, Any] = {}
        self._stop = False
        self.readiness = Readiness(self.sup, stopping=lambda: self._stop)
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
    def _child_env(self, prefect_api_url: str | None = None, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(prefect_env(self.data_dir, prefect_api_url or self.info.get("prefect_api_url")))
        env["FIBERFLOW_DATA_DIR"] = str(self.data_dir)
        env[MULTIPROC_ENV] = str(metrics_dir(self.data_dir))  # metrics add up (core/metrics)
        env.update(extra)
        return env

    def start_postgres(self) -> EmbeddedPostgres | None:
        """The embedded PostgreSQL, unless both databases are configured
        (stack/postgres_setup.py)."""
        return PostgresSetup(self.settings, self.sup, self.readiness, self._child_env).start()

    def launch_redis(self) -> Callable[[], str] | None:
        """Start the embedded Redis, unless one is configured; returns a wait for it."""
        if self.settings.redis_url:
            return None
        port = free_port()
        self.sup.start("redis", redis_command(self.data_dir, port))
        url = f"redis://127.0.0.1:{port}/0"

        def ready() -> str:
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            self.readiness.wait("redis", lambda: bool(client.ping()), 20)
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
        self.readiness.wait("prefect-server", lambda: http_ok(f"{api_url}/health"), READY_TIMEOUT)

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
        self.readiness.wait("api", lambda: http_answers(f"{url}/healthz"), 60)

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
        self.readiness.wait("lab", lab_file.exists, 60)
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
        if self.readiness.wait_exit(child, 180) != 0:
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

        self.readiness.wait("worker", polling, 90)

    def run(self, on_ready: Callable[[dict[str, Any]], None]) -> int:
        """Start everything, call ``on_ready``, then serve until a signal. Returns exit code.

        What waits for what: the database (and its migrations) for everything but Redis;
        the API and the lab for the database (and Redis); the deployments for the
        Prefect server and the lab's inventory; the worker for the Prefect server's work
        pool. Whatever does not wait for another starts at the same time."""
        preflight.up(self.settings, self.opts.api_port, self.opts.prefect_port)
        db_url = self.settings.database_url
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
