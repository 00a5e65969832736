from __future__ import annotations

from pathlib import Path

import pytest

from fiberflow.core.settings import ConfigError, Settings


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.data_dir == tmp_path / ".fiberflow"
    assert s.event_retention_seconds == 3600
    assert s.sse_max_connections_per_tenant == 100
    assert s.effective_database_url() == f"sqlite:///{tmp_path / '.fiberflow' / 'fiberflow.db'}"
    assert s.effective_redis_url() is None


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIBERFLOW_REDIS_URL", "redis://127.0.0.1:6379/2")
    monkeypatch.setenv("FIBERFLOW_EVENT_RETENTION_SECONDS", "60")
    monkeypatch.setenv("FIBERFLOW_DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.redis_url == "redis://127.0.0.1:6379/2"
    assert s.event_retention_seconds == 60


@pytest.mark.parametrize("bad", ["", "changeme", "secret", "short-but-not-placeholder"])
def test_jwt_key_refuses_placeholder_or_short(bad: str, tmp_path: Path) -> None:
    s = Settings(jwt_secret=bad, data_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="FIBERFLOW_JWT_SECRET"):
        s.jwt_key()


def test_jwt_key_missing_is_refused_outside_dev_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FIBERFLOW_JWT_SECRET.*not set"):
        Settings(data_dir=tmp_path, dev_mode=False).jwt_key()


def test_dev_mode_key_is_random_persisted_and_private(tmp_path: Path) -> None:
    key = Settings(data_dir=tmp_path, dev_mode=True).jwt_key()
    assert len(key) >= 32
    assert Settings(data_dir=tmp_path, dev_mode=True).jwt_key() == key
    assert (tmp_path / "dev-jwt-secret").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path / "other", dev_mode=True).jwt_key() != key


def test_stack_file_is_joined_but_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text('{"redis_url": "redis://127.0.0.1:7000/0"}')
    assert Settings(data_dir=tmp_path).effective_redis_url() == "redis://127.0.0.1:7000/0"
    s = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0")
    assert s.effective_redis_url() == "redis://127.0.0.1:6379/0"
