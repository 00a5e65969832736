from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fiberflow.api.app import create_app
from fiberflow.core.settings import Settings


def _client(tmp_path: Path, database_url: str, redis_url: str) -> TestClient:
    settings = Settings(data_dir=tmp_path, database_url=database_url, redis_url=redis_url,
                        dev_mode=True)  # fmt: skip
    return TestClient(create_app(settings))


def test_healthz_ok_with_real_db_and_redis(tmp_path: Path, database_url: str) -> None:
    with _client(tmp_path, database_url, "redis://127.0.0.1:6379/0") as client:
        r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"db": "ok", "redis": "ok"}


def test_healthz_503_when_redis_is_down(tmp_path: Path, database_url: str) -> None:
    with _client(tmp_path, database_url, "redis://127.0.0.1:1/0") as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["db"] == "ok" and r.json()["redis"].startswith("error")


@pytest.mark.parametrize("part", ["prefect", "lab", "worker", "deployments"])
def test_healthz_503_until_expected_parts_are_ready(tmp_path: Path, part: str) -> None:
    (tmp_path / "stack.json").write_text(f'{{"expect": ["{part}"]}}')
    with _client(tmp_path, f"sqlite:///{tmp_path}/x.db", "redis://127.0.0.1:6379/0") as client:
        r = client.get("/healthz")
    assert r.status_code == 503 and r.json()[part] == "starting"
