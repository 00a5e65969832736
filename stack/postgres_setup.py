"""The embedded PostgreSQL of ``fiberflow up``, started as a child of its supervisor.

The cluster in the data dir is used as it is. A data dir without one gets a copy of
the cached template (stack/cluster_cache.py) when there is a usable one; otherwise its
cluster is made here (``initdb``), and the first ``up`` to make one for this
installation migrates both databases, stops it cleanly and keeps a copy as the
template. The cache can only save time: a template that does not start is discarded
and the cluster made the slow way.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from fiberflow.core.db.migrate import upgrade
from fiberflow.core.settings import Settings
from fiberflow.stack.cluster_cache import ClusterCache, TemplateKey, current_key
from fiberflow.stack.postgres_server import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    ensure_cluster,
    run_as,
)
from fiberflow.stack.prefect_env import prefect_database_url
from fiberflow.stack.procs import Child, Supervisor, free_port
from fiberflow.stack.readiness import Readiness, StackError

log = logging.getLogger(__name__)
#: How long a fresh ``up`` waits for another one building the same PostgreSQL template
#: before it makes its cluster itself (without keeping it).
TEMPLATE_LOCK_TIMEOUT = 180.0


@dataclass
class PostgresSetup:
    settings: Settings
    sup: Supervisor
    readiness: Readiness
    #: The environment of a child of this stack (the server, Prefect's migrations).
    child_env: Callable[[], dict[str, str]]

    def start(self) -> EmbeddedPostgres | None:
        """The embedded PostgreSQL, unless both databases are configured. A new cluster
        is a copy of the cached template when there is one (stack/cluster_cache.py);
        otherwise it is made here, and the first to make one keeps a copy in the cache."""
        if self.settings.database_url and self.settings.prefect_database_url:
            return None
        pg = EmbeddedPostgres(self.settings.data_dir, free_port())
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
        child = self.sup.start("postgres", pg.command(), env=self.child_env(), user=user)
        self.readiness.wait("postgres", pg.ready, 60)
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
            env = self.child_env()
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database_url(pg.url("prefect"))
            argv = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
            migrate = self.sup.start("prefect-migrate", argv, env=env)
            code = self.readiness.wait_exit(migrate, 300)
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
