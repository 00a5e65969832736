"""Retry policy of the tasks that talk to devices: backoff with jitter on transient
errors (devices, a lost database connection), never on permanent ones.

The count and the delays are the settings' when a run fails, not when a task module was
imported: the warm worker imports every task once, then forks runs that each read their
own environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Task
from sqlalchemy.exc import DBAPIError

from fiberflow.core.settings import get_settings
from fiberflow.devices.base import DeviceError

P = ParamSpec("P")
R = TypeVar("R")


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


def backoff(retries: int, base: float) -> list[float]:
    """Seconds before each retry: ``base``, doubling."""
    return [base * 2**i for i in range(max(retries, 1))]


class DeviceTask(Task[P, R]):
    """A task whose retry count and delays come from the settings each time Prefect
    reads them (creating a run, deciding a retry). Prefect reads both from the task
    object, so here they are properties; ``Task.__init__`` assigns them, and that value
    is ignored. ``with_options`` returns a plain Task with the values of that moment."""

    @property
    def retries(self) -> int:
        return get_settings().task_retries

    @retries.setter
    def retries(self, _value: int) -> None:
        pass

    @property
    def retry_delay_seconds(self) -> list[float]:
        s = get_settings()
        return backoff(s.task_retries, s.task_retry_delay_seconds)

    @retry_delay_seconds.setter
    def retry_delay_seconds(self, _value: object) -> None:
        pass


def device_task(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]:
    """``@task(**options)`` for a step that talks to devices: retried on transient
    errors only, as often and as late as the settings say when it fails."""

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return DeviceTask(
            fn=fn, retry_jitter_factor=0.5, retry_condition_fn=transient_only, **options
        )

    return decorate
