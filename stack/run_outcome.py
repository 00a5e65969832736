"""How a warm flow run ends when its process does not end it: Crashed or Cancelled.

Prefect's process worker does this with private ``prefect.runner`` machinery (its
executor, process manager and control channel), which changes between minor releases;
fiberflow's worker (stack/worker.py) does it with the client and the flow's hooks:

- a process that exits non-zero before its engine reported a final state is proposed
  Crashed, and the flow's ``on_crashed`` hooks run in the worker (the process is gone);
- a process the worker killed because its run was set Cancelling runs the flow's
  ``on_cancellation`` hooks in the worker, then the run is set Cancelled.

The hooks hand the service to the reconcile flow (tasks/hooks.py), which compensates.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import signal
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import anyio
import anyio.to_thread
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Cancelled, Cancelling, Crashed

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun, State
    from prefect.client.schemas.responses import OrchestrationResult
    from prefect.flows import Flow

RunLogger = logging.LoggerAdapter[Any]
CANCELLING = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLING]))


def exit_text(code: int) -> str:
    """``status code 1``, ``signal SIGKILL`` (multiprocessing: a signal is -N)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status code {code}"


async def cancelling(client: PrefectClient, flow_run_ids: list[UUID]) -> list[UUID]:
    """Which of these runs are Cancelling (one query)."""
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids), state=CANCELLING)
    )
    return [run.id for run in runs]


async def settle(
    client: PrefectClient, flow_run: FlowRun, code: int, *, cancelled: bool, logger: RunLogger
) -> int:
    """The state and hooks of a run whose process exited non-zero or was killed on
    cancellation; the status code to report (non-zero: ``BaseWorker`` proposes
    Crashed once more, which the server refuses for a finished run)."""
    try:
        current = await client.read_flow_run(flow_run.id)
        if current.state is not None and current.state.is_final():
            # Its engine reported the outcome first (a failed flow exits 1; a run that
            # ended as the kill landed keeps its state): nothing crashed. Prefect's
            # runner reports 0 then too.
            return 0
        if cancelled:
            await run_hooks(current, Cancelling(message="Flow run was cancelled."), logger)
            await client.set_flow_run_state(
                flow_run.id, Cancelled(message="Flow run was cancelled."), force=True
            )
            logger.info("Cancelled flow run %r", flow_run.name)
            return 0
        message = f"Flow run process exited with {exit_text(code)}."
        result: OrchestrationResult[Any] = await client.set_flow_run_state(
            flow_run.id, Crashed(message=message)
        )
        if result.status is SetStateStatus.ACCEPT and result.state is not None:
            logger.info("Reported flow run %r as crashed: %s", flow_run.name, message)
            await run_hooks(current, result.state, logger)
    except Exception:
        logger.exception("Could not settle flow run %r after its process exited", flow_run.id)
    return code


async def run_hooks(flow_run: FlowRun, state: State, logger: RunLogger) -> None:
    """The flow's ``on_crashed`` or ``on_cancellation`` hooks (by ``state``), as Prefect
    runs them for its own subprocess runs: sync hooks in a thread, errors logged."""
    from prefect.flows import load_flow_from_flow_run

    try:
        flow = cast("Flow[..., Any]", await load_flow_from_flow_run(flow_run))
    except Exception:
        logger.warning("Could not load the flow to run its hooks", exc_info=True)
        return
    hooks = flow.on_crashed_hooks if state.is_crashed() else flow.on_cancellation_hooks
    for hook in hooks or []:
        name = getattr(hook, "__name__", repr(hook))
        logger.info("Running hook %r in response to entering state %r", name, state.name)
        call = functools.partial(hook, flow=flow, flow_run=flow_run, state=state)
        try:
            if inspect.iscoroutinefunction(hook):
                await cast("Awaitable[None]", call())
            else:
                await anyio.to_thread.run_sync(call)
        except Exception:
            logger.error("An error was encountered while running hook %r", name, exc_info=True)
        else:
            logger.info("Hook %r finished running successfully", name)
