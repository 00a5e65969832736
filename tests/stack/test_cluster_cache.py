"""The cache of migrated embedded PostgreSQL clusters (stack/cluster_cache.py), with the
real embedded server and Prefect's real migrations: the first fresh start keeps a
template, the next copies it; a template of another version is ignored, a broken one is
discarded, and both starts still get a working, migrated cluster."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from fiberflow.core.db.engine import make_engine
from fiberflow.core.settings import Settings
from fiberflow.stack.cluster_cache import ClusterCache, TemplateKey, current_key
from fiberflow.stack.supervisor import Stack, UpOptions

pytestmark = pytest.mark.slow

POSTGRES_SETUP = "fiberflow.stack.postgres_setup"


def _start(data_dir: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> str:
    """Start (and stop) the embedded PostgreSQL of a fresh ``up`` on ``data_dir``; check
    that both databases are migrated. Returns how the cluster was made."""
    caplog.clear()
    settings = Settings(data_dir=data_dir, cache_dir=cache_dir, dev_mode=True)
    stack = Stack(settings, UpOptions())
    try:
        with caplog.at_level(logging.INFO, logger=POSTGRES_SETUP):
            pg = stack.start_postgres()
        assert pg is not None
        _assert_migrated(pg.url("fiberflow"), pg.url("prefect"))
    finally:
        stack.sup.stop_all()
    made = [r.getMessage() for r in caplog.records if "PostgreSQL cluster:" in r.getMessage()]
    assert made, caplog.text
    return made[0].split(": ", 1)[1].split(" ")[0]  # "initdb" or "a" (a copy ...)


def _assert_migrated(fiberflow_url: str, prefect_url: str) -> None:
    for url, table in ((fiberflow_url, "service_instances"), (prefect_url, "deployment")):
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                conn.execute(text(f"SELECT count(*) FROM {table}"))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache holding the current template, made by a first fresh start."""
    root = tmp_path_factory.mktemp("cluster-cache")
    cache = root / "cache"
    settings = Settings(data_dir=root / "first", cache_dir=cache, dev_mode=True)
    stack = Stack(settings, UpOptions())
    try:
        assert stack.start_postgres() is not None
    finally:
        stack.sup.stop_all()
    yield cache


def _copy(cache: Path, tmp_path: Path) -> Path:
    own = tmp_path / "cache"
    shutil.copytree(cache, own, symlinks=True)
    return own


def test_first_start_keeps_a_template_and_the_next_copies_it(
    built_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = current_key()
    assert ClusterCache(built_cache).usable(key)
    cache = _copy(built_cache, tmp_path)
    assert _start(tmp_path / "second", cache, caplog) == "a"  # a copy of the template
    assert "copy of the template" in caplog.text
    # Its own cluster, not the cache's; no Prefect migrations run for it.
    assert (tmp_path / "second" / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "second" / "logs" / "prefect-migrate.log").exists()
    assert ClusterCache(cache).usable(key)


def test_a_template_of_another_version_is_ignored(
    built_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = current_key()
    other: TemplateKey = replace(key, prefect="0.0.1")
    cache = ClusterCache(tmp_path / "cache")
    # Only a template made by another Prefect version is in the cache.
    lock = cache.build_lock(other, 5)
    with lock as held:
        assert held
        assert cache.publish(other, ClusterCache(built_cache).entry(key) / "cluster")
    assert cache.usable(other) and not cache.usable(key)
    assert _start(tmp_path / "data", cache.root, caplog) == "initdb"
    # The current version's template is made next to the other one, which stays.
    assert cache.usable(key) and cache.usable(other)
    # A foreign template under the current key's name is not used either: replaced.
    shutil.rmtree(cache.entry(key))
    shutil.copytree(cache.entry(other), cache.entry(key), symlinks=True)
    assert not cache.usable(key)
    assert _start(tmp_path / "data2", cache.root, caplog) == "initdb"
    assert cache.usable(key)


def test_a_broken_template_falls_back_to_initdb_and_is_replaced(
    built_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = current_key()
    cache = ClusterCache(_copy(built_cache, tmp_path))
    control = cache.entry(key) / "cluster" / "global" / "pg_control"
    control.write_bytes(b"\x00garbage" * (control.stat().st_size // 8))
    assert cache.usable(key)  # looks complete: only starting it tells
    assert _start(tmp_path / "data", cache.root, caplog) == "initdb"
    assert "did not start" in caplog.text
    assert cache.usable(key)
    # The new template is a good one: the next start copies it.
    assert _start(tmp_path / "next", cache.root, caplog) == "a"
