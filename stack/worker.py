"""The worker fiberflow runs: Prefect's process worker, with warm flow-run processes.

Prefect's ``ProcessWorker`` starts every flow run as a cold ``python -m prefect.engine``:
on this project's 2-core machines that is ~1.7 s of imports (Prefect, SQLAlchemy,
netmiko, the flows), ~134 MB of private memory and ~2 CPU-s per run before its first
step (docs/benchmarks.md). ``WarmProcessWorker`` keeps the process per run — a crashed
or cancelled run is still one process killed, its pid is still what the reconciler
checks — but forks it from a forkserver that imported all of that once. The child
then does what ``prefect.engine``'s ``__main__`` does: load the flow run, resolve its
flow (already imported), ``run_flow``.

Everything else (polling, Submitting/Running/Crashed proposals, cancellation through the
control channel, crashed hooks) is Prefect's own ``FlowRunExecutorContext``, used the
way ``ProcessWorker.run`` uses it. That type lives in ``prefect.runner`` private modules:
constraints.txt pins Prefect, and tests/core/test_worker.py runs real flows through this
worker so an upgrade that moves it fails loudly.

``FIBERFLOW_WORKER_MODE=cold`` keeps Prefect's stock process worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.context
import os
import signal
import warnings
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import anyio
import anyio.abc
from prefect.runner._flow_run_executor import FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from fiberflow.core.settings import get_settings
from fiberflow.stack.procs import die_with_parent

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._control_channel import ControlChannel

log = logging.getLogger(__name__)

# Imported once by the forkserver; every flow-run process starts with them loaded.
PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.flows",
    "fiberflow.flows.provision",
    "fiberflow.flows.suspend",
    "fiberflow.flows.resume",
    "fiberflow.flows.terminate",
    "fiberflow.flows.reprovision",
    "fiberflow.flows.reconcile",
    "fiberflow.stack.worker",
)
CONTROL_KEYS = ("PREFECT__CONTROL_PORT", "PREFECT__CONTROL_TOKEN")
POLL_SECONDS = 0.25  # how often a run's exit is checked (a poll is one select() on a pipe)
TERMINATE_GRACE_SECONDS = 30.0


def warm_context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, preloading ``PRELOAD`` (the server starts on first use).

    ``get_context`` returns one context per process and the preload list only matters
    when the server starts, so asking again is free."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def prewarm() -> None:
    """Start the forkserver now (its imports take seconds), not at the first run."""
    proc = warm_context().Process(target=_noop, name="fiberflow-prewarm")
    proc.start()
    proc.join(120)


def _noop() -> None:
    return None


def run_flow_run(flow_run_id: str, startup_env: dict[str, str], env: dict[str, str | None]) -> None:
    """The child: ``python -m prefect.engine <id>``, minus the imports."""
    # A run never outlives its forkserver, which exits with the worker: an orphaned run
    # would go on driving devices while the reconciler compensates its service.
    die_with_parent(signal.SIGKILL)
    # Consumed before anything connects, as prefect.flow_engine's subprocess bootstrap
    # does (configure_from_env() removes them again).
    os.environ.update(startup_env)
    from prefect._internal.control_listener import configure_from_env
    from prefect.context import SettingsContext, get_settings_context
    from prefect.engine import handle_engine_signals
    from prefect.flow_engine import load_flow, load_flow_run, run_flow
    from prefect.logging.loggers import flow_run_logger
    from prefect.settings import Settings

    configure_from_env()
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    # Settings were read when the forkserver imported Prefect and fiberflow: read them
    # again from this run's environment (API URL, flow run id, FIBERFLOW_*). Task
    # options bound at import (retries) keep the worker's values.
    get_settings.cache_clear()
    with SettingsContext(profile=get_settings_context().profile, settings=Settings()):
        run_id = UUID(flow_run_id)
        with handle_engine_signals(run_id):
            flow_run = load_flow_run(flow_run_id=run_id)
            flow = load_flow(flow_run)
            # Errors go to the run's log in the Prefect UI, as prefect.engine does it.
            run_logger = cast(logging.Logger, flow_run_logger(flow_run=flow_run))
            if flow.isasync or flow.isgenerator:
                raise TypeError(f"flow {flow.name!r}: the warm worker runs plain sync flows")
            run_flow(flow, flow_run=flow_run, error_logger=run_logger)


class ForkserverStarter:
    """A ``prefect.runner`` ProcessStarter: forks the run's process from the warm server."""

    def __init__(self, env: dict[str, str | None], control_channel: ControlChannel | None) -> None:
        self._env = dict(env)
        self._control_channel = control_channel

    async def start(
        self,
        flow_run: FlowRun,
        task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        startup: dict[str, str] = {}
        registered = False
        if self._control_channel is not None:
            try:
                port, token = self._control_channel.register(flow_run.id)
                startup = {CONTROL_KEYS[0]: str(port), CONTROL_KEYS[1]: token}
                registered = True
            except RuntimeError:
                pass  # no loopback listener: cancellation falls back to kill
        env = self._env | {
            "PREFECT__FLOW_RUN_ID": str(flow_run.id),
            # The worker runs crashed/cancellation hooks itself (as for Prefect's own
            # subprocess runs); the child must not run them a second time.
            "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
        }
        handed_off = False
        try:
            process = warm_context().Process(
                target=run_flow_run,
                args=(str(flow_run.id), startup, env),
                name=f"flow-run-{flow_run.id}",
            )
            # Every multiprocessing call stays on the event loop's thread: start() polls
            # the other children, and two threads polling one forkserver sentinel can
            # read a real exit code as 255 (EOF). A start is one forkserver round trip.
            process.start()
            handle = ProcessHandle(process)  # type: ignore[arg-type]  # a ForkServerProcess
            task_status.started(handle)
            handed_off = True
        except BaseException:
            if registered and not handed_off and self._control_channel is not None:
                self._control_channel.unregister(flow_run.id)
            raise
        await _wait(process)


async def _wait(process: multiprocessing.process.BaseProcess) -> None:
    """Until the run's process exits. Cancelled (the worker is stopping): the run gets
    SIGTERM (Prefect's engine marks it), then SIGKILL after a grace period, as
    Prefect's own subprocess runs do."""
    try:
        while process.exitcode is None:
            await anyio.sleep(POLL_SECONDS)
    except BaseException:
        with anyio.CancelScope(shield=True):
            process.terminate()
            with anyio.move_on_after(TERMINATE_GRACE_SECONDS):
                while process.exitcode is None:
                    await anyio.sleep(0.1)
            if process.exitcode is None:
                process.kill()
        raise


# Prefect registers worker classes by ``type``; this one takes over "process" in the
# worker's own process (on purpose: same pool type, same job template), which Prefect
# warns about at class creation.
warnings.filterwarnings("ignore", message="Type 'WarmProcessWorker'", category=UserWarning)


class WarmProcessWorker(ProcessWorker):
    """``ProcessWorker`` whose flow-run processes fork from a preloaded server."""

    type = "process"  # same pool type and job template as Prefect's process worker

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining = False
        self.in_flight = 0

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        # Draining (the first SIGTERM): take no new runs, let the ones in flight finish.
        if self.draining:
            return []
        return await super().get_and_submit_flow_runs()

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        if configuration._command_configured or configuration.working_dir:
            # A job that sets its own command or working directory gets Prefect's
            # stock process start (it runs what it was told to, where it was told to).
            return await super().run(flow_run, configuration, task_status)
        status = task_status if task_status is not None else anyio.TASK_STATUS_IGNORED
        execution: Any = None
        self.in_flight += 1
        try:
            execution = await self._execute(flow_run, configuration, status)
        finally:
            self.in_flight -= 1
        if execution is None or execution.status_code is None:
            raise RuntimeError("failed to start the flow run process")
        return ProcessWorkerResult(
            status_code=execution.status_code, identifier=str(execution.handle.pid)
        )

    async def _execute(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        status: anyio.abc.TaskStatus[int],
    ) -> Any:
        from prefect.flows import load_flow_from_flow_run

        execution: Any = None
        async with FlowRunExecutorContext() as ctx:
            starter = ForkserverStarter(configuration.env, ctx.control_channel)
            executor = ctx.create_executor(
                flow_run, starter, resolve_flow=load_flow_from_flow_run, propose_submitting=False
            )

            async def execute(*, task_status: anyio.abc.TaskStatus[ProcessHandle]) -> None:
                nonlocal execution
                execution = await executor.submit(task_status=task_status)

            async with anyio.create_task_group() as group:
                handle = await group.start(execute)
                if handle.pid is None:
                    raise RuntimeError("flow run process has no pid")
                status.started(handle.pid)
        return execution


async def _serve(pool: str, name: str) -> None:
    """Serve until signalled. First SIGTERM/SIGINT: drain (no new runs; the worker exits
    once the runs in flight end, as Prefect's worker does). Second: stop now (runs get
    SIGTERM, then SIGKILL after a grace period; the reconciler compensates them).
    Third: SIGKILL."""
    from prefect.settings import PREFECT_WORKER_HEARTBEAT_SECONDS

    await anyio.to_thread.run_sync(prewarm)
    worker = WarmProcessWorker(
        name=name,
        work_pool_name=pool,
        heartbeat_interval_seconds=int(PREFECT_WORKER_HEARTBEAT_SECONDS.value()),
    )
    serving = asyncio.current_task()
    assert serving is not None
    signals = 0

    async def drain() -> None:
        while worker.in_flight:
            await asyncio.sleep(POLL_SECONDS)
        serving.cancel()

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.warning("%s: draining, %d run(s) in flight", sig.name, worker.in_flight)
            worker.draining = True
            asyncio.ensure_future(drain())
        elif signals == 2:
            log.warning("%s again: stopping the runs in flight", sig.name)
            serving.cancel()
        else:
            os.kill(os.getpid(), signal.SIGKILL)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    with contextlib.suppress(asyncio.CancelledError):
        await worker.start()


def main(argv: list[str] | None = None) -> None:
    """``python -P -c "from stack.worker import main; main()" --pool POOL --name NAME``.

    Started with ``-c``, not ``-m stack.worker``: multiprocessing re-runs a ``-m`` main
    module in every child it starts, and the children must start with nothing to do."""
    parser = argparse.ArgumentParser(prog="fiberflow.stack.worker", description=main.__doc__)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.pool, args.name))
