"""The worker fiberflow runs: a Prefect process worker whose flow-run processes start warm.

Prefect's ``ProcessWorker`` starts every flow run as a cold ``python -m prefect.engine``:
on this project's 2-core machines that is ~1.7 s of imports (Prefect, SQLAlchemy,
netmiko, the flows), ~134 MB of private memory and ~2 CPU-s per run before its first
step (docs/benchmarks.md). ``WarmProcessWorker`` keeps the process per run — a crashed
or cancelled run is still one process killed, its pid is still what the reconciler
checks — but forks it from a forkserver that imported all of that once. The child
then does what ``prefect.engine``'s ``__main__`` does: load the flow run, resolve its
flow (already imported), ``run_flow``.

It is a custom worker, Prefect's documented extension point: a ``ProcessWorker`` (same
pool type, same job template, Prefect's own start for jobs with their own command or
working directory) whose ``run`` forks the process, reports its pid, waits for it and
returns the result; ``BaseWorker`` polls, proposes Pending/Submitting and heartbeats.
What Prefect's process worker does around a run with private ``prefect.runner``
machinery (cancelling a run in flight, Crashed and its hooks) is fiberflow's own, with
public APIs only: here and in stack/run_outcome.py.

``FIBERFLOW_WORKER_MODE=cold`` keeps Prefect's stock process worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.process
import os
import signal
import warnings
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import anyio
import anyio.abc
from prefect.settings import get_current_settings
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult
from pydantic import PrivateAttr

from fiberflow.core import catalogue
from fiberflow.core.settings import get_settings
from fiberflow.stack import prefect_tls, run_outcome
from fiberflow.stack.procs import die_with_parent

if TYPE_CHECKING:
    from prefect.client.schemas.objects import Flow as APIFlow
    from prefect.client.schemas.objects import FlowRun, WorkPool
    from prefect.client.schemas.responses import DeploymentResponse

log = logging.getLogger(__name__)

# Imported once by the forkserver; every flow-run process starts with them loaded.
PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.flows",
    *catalogue.flow_modules(),
    "fiberflow.stack.worker",
    # Imported lazily by every run, after the fork, unless loaded here (a profile of a
    # burst, docs/benchmarks.md): the database driver at the first engine, anyio's
    # asyncio backend and Prefect's visualization helpers at the first flow call.
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "anyio._backends._asyncio",
    "prefect.utilities.visualization",
)
POLL_SECONDS = 0.25  # how often a run's exit is checked (a poll is one select() on a pipe)
TERMINATE_GRACE_SECONDS = 30.0
# Prefect's own switch (read by prefect.flow_engine) telling a supervised run that its
# supervisor runs the cancellation hooks: here the worker does. Should a release drop
# it, the worst case is a hook run twice, and the hooks' hand-off to the reconcile
# flow is idempotent.
SUPERVISED_HOOKS_ENV = "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS"


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


def run_flow_run(flow_run_id: str, env: dict[str, str | None]) -> None:
    """The child: ``python -m prefect.engine <id>``, minus the imports."""
    # A run never outlives its forkserver, which exits with the worker: an orphaned run
    # would go on driving devices while the reconciler compensates its service.
    die_with_parent(signal.SIGKILL)
    from prefect.context import SettingsContext, get_settings_context
    from prefect.engine import handle_engine_signals
    from prefect.flow_engine import load_flow, load_flow_run, run_flow
    from prefect.logging.loggers import flow_run_logger
    from prefect.settings import Settings

    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    # Settings were read when the forkserver imported Prefect and fiberflow: read them
    # again from this run's environment (API URL, flow run id, FIBERFLOW_*). Device
    # tasks read their retry count and delays from the settings when they run
    # (tasks/retry.py), so they follow this run's environment too.
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


def start_warm(
    flow_run: FlowRun, env: dict[str, str | None]
) -> multiprocessing.process.BaseProcess:
    """Fork the run's process from the warm server (one forkserver round trip)."""
    env = dict(env) | {
        "PREFECT__FLOW_RUN_ID": str(flow_run.id),
        # The worker runs the cancellation hooks itself; the child must not run them too.
        SUPERVISED_HOOKS_ENV: "false",
    }
    process = warm_context().Process(
        target=run_flow_run, args=(str(flow_run.id), env), name=f"flow-run-{flow_run.id}"
    )
    # Every multiprocessing call stays on the event loop's thread: start() polls the
    # other children, and two threads polling one forkserver sentinel can read a real
    # exit code as 255 (EOF).
    process.start()
    return process


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


class WarmJobConfiguration(ProcessJobConfiguration):
    """Prefect's process job configuration, remembering whether the job set its own
    command (preparing it fills in ``python -m prefect.engine`` otherwise)."""

    _own_command: bool = PrivateAttr(default=False)

    def prepare_for_flow_run(
        self,
        flow_run: FlowRun,
        deployment: DeploymentResponse | None = None,
        flow: APIFlow | None = None,
        work_pool: WorkPool | None = None,
        worker_name: str | None = None,
        worker_id: UUID | None = None,
    ) -> None:
        self._own_command = self.command is not None
        super().prepare_for_flow_run(
            flow_run, deployment, flow, work_pool, worker_name, worker_id=worker_id
        )

    @property
    def starts_stock(self) -> bool:
        """A job that sets its own command or working directory gets Prefect's stock
        start: it runs what it was told to, where it was told to."""
        return self._own_command or self.working_dir is not None


# Prefect registers worker classes by ``type``; this one takes over "process" in the
# worker's own process (on purpose: same pool type, same job template), which Prefect
# warns about at class creation.
warnings.filterwarnings("ignore", message="Type 'WarmProcessWorker'", category=UserWarning)


class WarmProcessWorker(ProcessWorker):
    """``ProcessWorker`` whose flow-run processes fork from a preloaded server."""

    type = "process"  # same pool type and job template as Prefect's process worker
    job_configuration = WarmJobConfiguration

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining = False
        self.in_flight = 0
        self._warm: dict[UUID, multiprocessing.process.BaseProcess] = {}
        self._cancelling: set[UUID] = set()
        self._watch: anyio.abc.TaskGroup | None = None

    async def setup(self) -> None:
        await super().setup()
        # Entered after BaseWorker's runs task group and left before it (teardown), on
        # the task that runs the worker, as BaseWorker does with its own.
        self._watch = anyio.create_task_group()
        await self._watch.__aenter__()
        self._watch.start_soon(self._watch_cancellations)

    async def teardown(self, *exc_info: Any) -> None:
        if self._watch is not None:
            self._watch.cancel_scope.cancel()
            await self._watch.__aexit__(None, None, None)
            self._watch = None
        await super().teardown(*exc_info)

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
        self.in_flight += 1
        try:
            if not isinstance(configuration, WarmJobConfiguration) or configuration.starts_stock:
                return await super().run(flow_run, configuration, task_status)
            return await self._run_warm(flow_run, configuration, task_status)
        finally:
            self.in_flight -= 1

    async def _run_warm(
        self,
        flow_run: FlowRun,
        configuration: WarmJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None,
    ) -> ProcessWorkerResult:
        process = start_warm(flow_run, configuration.env)
        if process.pid is None:
            raise RuntimeError("flow run process has no pid")
        self._warm[flow_run.id] = process
        status = task_status if task_status is not None else anyio.TASK_STATUS_IGNORED
        try:
            status.started(process.pid)
            await _wait(process)
        finally:
            del self._warm[flow_run.id]
            cancelled = flow_run.id in self._cancelling
            self._cancelling.discard(flow_run.id)
        code = process.exitcode
        assert code is not None  # _wait returned
        if cancelled or code != 0:
            logger = self.get_flow_run_logger(flow_run)
            code = await run_outcome.settle(
                self.client, flow_run, code, cancelled=cancelled, logger=logger
            )
        return ProcessWorkerResult(status_code=code, identifier=str(process.pid))

    async def _watch_cancellations(self) -> None:
        """Kill the process of every warm run set Cancelling; ``run_outcome.settle``
        does the rest.

        ``BaseWorker`` cancels only runs that have not started. SIGKILL, not SIGTERM:
        without the cancel intent Prefect passes over its private control channel, a
        SIGTERMed engine reports its run Crashed and runs ``on_crashed`` itself; killed,
        the run's state is the worker's to set. Compensation is the reconcile flow's
        job either way (the hooks hand the service to it)."""
        while True:
            await anyio.sleep(get_current_settings().worker.query_seconds)
            watched = [run_id for run_id in self._warm if run_id not in self._cancelling]
            if not watched:
                continue
            try:
                found = await run_outcome.cancelling(self.client, watched)
            except Exception as exc:
                log.warning("could not check the runs in flight for cancellation: %s", exc)
                continue
            for run_id in found:
                process = self._warm.get(run_id)
                if process is not None:
                    self._cancelling.add(run_id)
                    process.kill()


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
    """``python -P -c "from fiberflow.stack.worker import main; main()" --pool P --name N``.

    Started with ``-c``, not ``-m fiberflow.stack.worker``: multiprocessing re-runs a
    ``-m`` main module in every child it starts, and the children must start with
    nothing to do."""
    parser = argparse.ArgumentParser(prog="fiberflow.stack.worker", description=main.__doc__)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    # Before the forkserver starts: it and every run it forks inherit the setting.
    prefect_tls.skip_ca_bundle_over_http(
        os.environ, get_current_settings().api.url, get_settings().cache_dir
    )
    asyncio.run(_serve(args.pool, args.name))
