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

from fiberflow.core import catalogue, logs, metrics
from fiberflow.core.catalogue import Step
from fiberflow.core.settings import get_settings
from fiberflow.tasks.context import RunContext, lookup

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
    # Prefect calls hooks positionally from the engine but by keyword (flow=, flow_run=,
    # state=) from the runner/worker, which runs on_crashed / on_cancellation itself.
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
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


def _duration_ms(run: Any, state: Any) -> float | None:
    start, end = getattr(run, "start_time", None), getattr(state, "timestamp", None)
    if start is None or end is None:
        return None
    return round(float((end - start).total_seconds()) * 1000, 1)


def step_hooks(step: Step, message: str | None = None) -> TaskHooks:
    """``on_running`` / ``on_completion`` / ``on_failure`` for a task that is ``step``
    (``message``: what this task of a several-task step says when it starts)."""

    @_safe
    def on_running(_task: Any, task_run: Any, state: Any) -> None:
        ctx = lookup(task_run.flow_run_id)
        if ctx is None:
            return
        if state.name == "Retrying" or task_run.run_count > 1:
            # Prefect counts the run before it calls the hook: run_count is this attempt.
            attempt = max(task_run.run_count, 2)
            ctx.progress(step, "retrying", f"{step.message} (attempt {attempt})",
                         attempt=attempt)  # fmt: skip
            return
        ctx.current = step
        ctx.progress(step, message=message)

    @_safe
    def on_completion(_task: Any, task_run: Any, _state: Any) -> None:
        ctx = lookup(task_run.flow_run_id)
        if ctx is not None:
            log.info(
                "step done",
                extra=ctx.log_extra(status="done", duration_ms=_duration_ms(task_run, _state)),
            )

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


def _flow_ctx(flow_run: Any, flow: Any = None) -> RunContext | None:
    ctx = lookup(flow_run.id)
    if ctx is not None:
        return ctx
    # The flow died before it registered (or in another process): rebuild from the row.
    from fiberflow.tasks.run import context_for

    service_id = (flow_run.parameters or {}).get("service_id")
    # The catalogue knows the flow's operation even before it registered its context.
    entry = catalogue.by_flow(getattr(flow, "name", ""))
    operation = entry.operation if entry else None
    if not service_id:
        return None
    return context_for(str(service_id), str(flow_run.id), operation)


def _workflow_labels(flow: Any, flow_run: Any) -> tuple[str, str | None]:
    """(operation, plan) of a lifecycle flow run, for the workflow metrics."""
    name = str(getattr(flow, "name", "unknown"))
    entry = catalogue.by_flow(name)
    operation = entry.operation.value if entry else name
    service_id = (flow_run.parameters or {}).get("service_id")
    if not service_id:
        return operation, None
    from fiberflow.tasks import service

    try:
        return operation, service.load(str(service_id)).plan
    except Exception:  # the row is gone: the run still counts, plan "unknown"
        return operation, None


@_safe  # never in the way of the terminal event that follows
def _ended(flow: Any, flow_run: Any, state: Any, ok: bool, ctx: RunContext | None) -> None:
    """Workflow metrics and the run's closing log line (with duration_ms)."""
    seconds = metrics.workflow_ended(
        str(flow_run.id), ok=ok, labels=lambda: _workflow_labels(flow, flow_run),
        started_at=getattr(flow_run, "start_time", None),
    )  # fmt: skip
    fields = {"status": "completed" if ok else state.name.lower(),
              "duration_ms": round(seconds * 1000, 1) if seconds is not None else None}  # fmt: skip
    extra = ctx.log_extra(**fields) if ctx else {"flow_run_id": str(flow_run.id), **fields}
    log.log(logging.INFO if ok else logging.WARNING, "flow run %s", fields["status"], extra=extra)


def flow_hooks() -> FlowHooks:
    """Hooks for every lifecycle flow: terminal events after the row is committed."""

    @_safe
    def on_running(flow: Any, flow_run: Any, _state: Any) -> None:
        settings = get_settings()
        logs.configure_flow_run_process(settings.log_level, settings.log_json)
        operation, plan = _workflow_labels(flow, flow_run)
        metrics.workflow_started(str(flow_run.id), operation, plan)
        sid = (flow_run.parameters or {}).get("service_id")
        extra = {"flow_run_id": str(flow_run.id), "service_id": sid, "operation": operation,
                 "status": "started"}  # fmt: skip
        log.info("flow run started", extra=extra)

    @_safe
    def on_completion(flow: Any, flow_run: Any, state: Any) -> None:
        ctx = _flow_ctx(flow_run, flow)
        _ended(flow, flow_run, state, True, ctx)
        if ctx is not None:
            ctx.completed()

    @_safe
    def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
        ctx = _flow_ctx(flow_run, flow)
        _ended(flow, flow_run, state, False, ctx)
        # One failed event per operation (DESIGN): not when the row was failed already.
        if ctx is not None and ctx.failed_here is not False:
            ctx.failed(ctx.error or _error_text(state))

    def _ended_abnormally(flow: Any, flow_run: Any, state: Any, what: str) -> None:
        # Runs in the worker (the run's process may be gone). The reconcile flow it
        # hands over to counts the failure in the workflow metrics, once.
        # The service and the run are in the flow run itself: no context to rebuild.
        from fiberflow.tasks.run import close_abnormal_run

        service_id = (flow_run.parameters or {}).get("service_id")
        extra = {"flow_run_id": str(flow_run.id), "service_id": service_id, "status": what}
        log.warning("flow run %s", what, extra=extra)
        if service_id:
            error = f"flow run {what}: {state.message or state.name}"
            close_abnormal_run(str(service_id), str(flow_run.id), error)

    @_safe
    def on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
        _ended_abnormally(flow, flow_run, state, "crashed")

    @_safe
    def on_cancellation(flow: Any, flow_run: Any, state: Any) -> None:
        _ended_abnormally(flow, flow_run, state, "cancelled")

    return {
        "on_running": [on_running],
        "on_completion": [on_completion],
        "on_failure": [on_failure],
        "on_crashed": [on_crashed],
        "on_cancellation": [on_cancellation],
    }
