"""Retry policy: backoff with jitter on transient errors (devices, a lost database
connection), never on permanent ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from sqlalchemy.exc import DBAPIError

from fiberflow.core.settings import get_settings
from fiberflow.devices.base import DeviceError


def transient_only(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry only a DeviceError that says it is transient (timeout, dropped session), or
    a database connection lost mid-statement (the pool opens a new one)."""
    try:
        state.result()
    except DeviceError as exc:
        return exc.transient
    except DBAPIError as exc:
        return bool(exc.connection_invalidated)
    except Exception:
        return False
    return False


class RetryOptions(TypedDict):
    retries: int
    retry_delay_seconds: list[float]
    retry_jitter_factor: float
    retry_condition_fn: Callable[[Any, Any, Any], bool]


def device_retries() -> RetryOptions:
    """Keyword arguments for ``@task`` on tasks that talk to devices."""
    s = get_settings()
    base = s.task_retry_delay_seconds
    return {
        "retries": s.task_retries,
        "retry_delay_seconds": [base * 2**i for i in range(max(s.task_retries, 1))],
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": transient_only,
    }
