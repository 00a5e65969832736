"""State hooks: every task and flow transition becomes a lifecycle event.

Tasks: a step starting is a progress event with the step's status; a retry is a
progress event ``retrying`` with the attempt number (Prefect calls ``on_running``
again, with state name ``Retrying``); a final failure is a ``failed`` progress event.
Flows: ``completed`` / ``failed`` events after the service row is committed. Tasks
have no crash hook, so the flow's ``on_crashed`` closes the open step.
A hook never fails a task: every hook logs and swallows its own errors.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypedDict

from tasks.context import RunContext, lookup
from tasks.steps import Step

log = logging.getLogger(__name__)
Hook = Callable[..., None]


class TaskHooks(TypedDict):
    on_running: list[Any]
    on_completion: list[Any]
    on_failure: list[Any]


class FlowHooks(TypedDict):
    on_running: list[Any]
    on_completion: list[Any]
    on_failure: list[Any]
    on_crashed: list[Any]
    on_cancellation: list[Any]


def _safe(fn: Hook) -> Hook:
    @functools.wraps(fn)
    def wrapper(*args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("state hook %s failed (ignored)", fn.__name__)

    return wrapper


def _error_text(state: Any) -> str:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # result not retrievable: fall back to the state message
        exc = err
    if isinstance(exc, BaseException):
        return str(exc) or type(exc).__name__
    return str(state.message or "failed")


def step_hooks(step: Step, message: str | None = None) -> TaskHooks:
    """``on_running`` / ``on_completion`` / ``on_failure`` for a task that is ``step``
    (``message``: what this task of a several-task step says when it starts)."""

    @_safe
    def on_running(_task: Any, task_run: Any, state: Any) -> None:
        ctx = lookup(task_run.flow_run_id)
        if ctx is None:
            return
        if state.name == "Retrying" or task_run.run_count > 1:
            attempt = max(task_run.run_count, 1) + (1 if state.name == "Retrying" else 0)
            ctx.progress(step, "retrying", f"{step.message} (attempt {attempt})",
                         attempt=attempt)  # fmt: skip
            return
        ctx.current = step
        ctx.progress(step, message=message)

    @_safe
    def on_completion(_task: Any, task_run: Any, _state: Any) -> None:
        ctx = lookup(task_run.flow_run_id)
        if ctx is not None:
            log.info("step done", extra=ctx.log_extra(status="done"))

    @_safe
    def on_failure(_task: Any, task_run: Any, state: Any) -> None:
        ctx = lookup(task_run.flow_run_id)
        if ctx is None:
            return
        error = _error_text(state)
        ctx.failed_step = step
        ctx.error = error
        ctx.progress(step, "failed", error)

    return {
        "on_running": [on_running],
        "on_completion": [on_completion],
        "on_failure": [on_failure],
    }


def rollback_notice(ctx: RunContext | None, step: Step, message: str) -> None:
    """A compensation notice (a progress event with status ``rolled_back``)."""
    if ctx is None:
        return
    try:
        ctx.progress(step, "rolled_back", message)
    except Exception:
        log.exception("could not publish rollback notice (ignored)")


def _flow_ctx(flow_run: Any) -> RunContext | None:
    ctx = lookup(flow_run.id)
    if ctx is not None:
        return ctx
    # The flow died before it registered (or in another process): rebuild from the row.
    from tasks.run import context_for

    service_id = (flow_run.parameters or {}).get("service_id")
    return context_for(str(service_id), str(flow_run.id)) if service_id else None


def flow_hooks() -> FlowHooks:
    """Hooks for every lifecycle flow: terminal events after the row is committed."""

    @_safe
    def on_running(_flow: Any, flow_run: Any, _state: Any) -> None:
        log.info("flow run started", extra={"flow_run_id": str(flow_run.id)})

    @_safe
    def on_completion(_flow: Any, flow_run: Any, _state: Any) -> None:
        ctx = _flow_ctx(flow_run)
        if ctx is not None:
            ctx.completed()

    @_safe
    def on_failure(_flow: Any, flow_run: Any, state: Any) -> None:
        ctx = _flow_ctx(flow_run)
        if ctx is not None:
            ctx.failed(ctx.error or _error_text(state))

    def _ended_abnormally(flow_run: Any, state: Any, what: str) -> None:
        from tasks.run import close_abnormal_run

        ctx = _flow_ctx(flow_run)
        if ctx is not None:
            close_abnormal_run(ctx, f"flow run {what}: {state.message or state.name}")

    @_safe
    def on_crashed(_flow: Any, flow_run: Any, state: Any) -> None:
        _ended_abnormally(flow_run, state, "crashed")

    @_safe
    def on_cancellation(_flow: Any, flow_run: Any, state: Any) -> None:
        _ended_abnormally(flow_run, state, "cancelled")

    return {
        "on_running": [on_running],
        "on_completion": [on_completion],
        "on_failure": [on_failure],
        "on_crashed": [on_crashed],
        "on_cancellation": [on_cancellation],
    }
