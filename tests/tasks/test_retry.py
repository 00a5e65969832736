"""Device tasks take their retry count and delays from the settings when they run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fiberflow.core.settings import get_settings
from fiberflow.tasks.provisioning import configure_ont
from fiberflow.tasks.retry import backoff, device_task, transient_only


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_settings_changed_after_import_apply(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    # configure_ont was defined when its module was imported, before these settings.
    monkeypatch.setenv("FIBERFLOW_TASK_RETRIES", "5")
    monkeypatch.setenv("FIBERFLOW_TASK_RETRY_DELAY_SECONDS", "0.5")
    get_settings.cache_clear()
    assert configure_ont.retries == 5
    assert configure_ont.retry_delay_seconds == [0.5, 1.0, 2.0, 4.0, 8.0]
    monkeypatch.setenv("FIBERFLOW_TASK_RETRIES", "0")
    get_settings.cache_clear()
    assert configure_ont.retries == 0
    assert configure_ont.retry_condition_fn is transient_only


def test_device_task_keeps_the_other_options(fresh_settings: None) -> None:
    @device_task(name="probe", tags={"lab"})
    def probe(x: int) -> int:
        return x + 1

    assert probe.name == "probe" and probe.tags == {"lab"}
    assert probe.retries == get_settings().task_retries
    assert probe.retry_jitter_factor == 0.5
    assert probe.fn(1) == 2


def test_backoff_doubles() -> None:
    assert backoff(3, 1.0) == [1.0, 2.0, 4.0]
    assert backoff(0, 1.0) == [1.0]
