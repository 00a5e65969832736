"""stack/worker.py: flow-run processes fork from a warm, preloaded server.

The whole path (poll, fork, run, crash handling) runs in every whole-stack test
(`fiberflow up` starts this worker); tests/flows/test_reconciler.py kills a run's process
alone. Here: what makes the fork warm, which multiprocessing would otherwise fail
silently (a preload module that does not import is skipped without a word), which jobs
start stock, and a run cancelled in flight."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import time
from multiprocessing import forkserver
from pathlib import Path
from uuid import uuid4

import httpx
import psutil
import pytest
from prefect.client.schemas.objects import FlowRun

from fiberflow.flows.deployments import DEPLOYMENTS
from fiberflow.lab.admin import admin_call
from fiberflow.lab.harness import running_stack, wait_healthy
from fiberflow.stack import run_outcome, worker
from fiberflow.stack.prefect_env import worker_argv
from tests.fixtures.stack import start_slow_provisioning


def _report(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(sorted(m for m in worker.PRELOAD if m in sys.modules))


# Unpickling the child's target imports this module (and so stack.worker and Prefect)
# in the child first: only the flow modules, which nothing here imports, show that the
# forkserver preloaded them.
FLOW_MODULES = sorted(m for m in worker.PRELOAD if m.startswith("fiberflow.flows."))


def test_children_start_with_every_flow_imported_from_a_single_threaded_server() -> None:
    # What the child imports by itself (this module) must not include them, else the
    # check below proves nothing.
    probe = (
        "import sys, tests.stack.test_worker as t; print(set(t.FLOW_MODULES) & set(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "set()", out
    ctx = worker.warm_context()
    queue = ctx.Queue()
    child = ctx.Process(target=_report, args=(queue,))
    child.start()
    assert FLOW_MODULES  # else the checks below prove nothing
    loaded = queue.get(timeout=120)
    child.join(30)
    assert child.exitcode == 0
    assert set(FLOW_MODULES) <= set(loaded)
    # Children fork from it: a thread there (a lock held, Prefect's log shipper) would
    # be copied half-way into every run.
    server = psutil.Process(forkserver._forkserver._forkserver_pid)  # type: ignore[attr-defined]
    assert server.num_threads() == 1


def test_every_deployed_flow_module_is_preloaded() -> None:
    modules = {spec.entrypoint.partition(":")[0] for spec in DEPLOYMENTS}
    assert modules <= set(worker.PRELOAD)


def test_worker_mode_chooses_the_command() -> None:
    warm = worker_argv("w1", "warm")
    assert warm[1:4] == ["-P", "-c", "from fiberflow.stack.worker import main; main()"]
    assert warm[-4:] == ["--pool", "fiberflow", "--name", "w1"]
    cold = worker_argv("w1", "cold")
    assert cold[1:5] == ["-m", "prefect", "worker", "start"] and "--type" in cold


@pytest.mark.parametrize(
    ("job", "stock"),
    [({}, False), ({"command": "python -m prefect.engine"}, True), ({"working_dir": "/tmp"}, True)],
)
def test_only_jobs_with_their_own_command_or_working_dir_start_stock(
    job: dict[str, str], stock: bool
) -> None:
    configuration = worker.WarmJobConfiguration(**job)
    configuration.prepare_for_flow_run(flow_run=FlowRun(flow_id=uuid4()))
    assert configuration.command  # prepared: Prefect filled in its default
    assert configuration.starts_stock is stock


def test_exit_codes_read_as_signals_or_status_codes() -> None:
    assert run_outcome.exit_text(-9) == "signal SIGKILL"
    assert run_outcome.exit_text(1) == "status code 1"


@pytest.mark.slow
def test_sigterm_drains_the_run_in_flight_then_exits(tmp_path: Path) -> None:
    """A rolling restart must not fail provisionings: the first SIGTERM stops taking
    runs, the one in flight completes, then the worker exits (`up` starts a new one)."""
    with running_stack(tmp_path, FIBERFLOW_RECONCILE_INTERVAL_SECONDS="0") as stack:
        wait_healthy(stack.api_url, stack.proc)
        sid, auth, _ports = start_slow_provisioning(stack, "48575443AABBCC02")
        worker = psutil.Process(stack.info()["children"]["worker"])
        worker.send_signal(signal.SIGTERM)
        svc: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            svc = httpx.get(f"{stack.api_url}/api/v1/services/{sid}", headers=auth).json()
            if svc["status"] not in ("pending", "provisioning"):
                break
            time.sleep(0.5)
        assert svc["status"] == "active", svc
        worker.wait(60)  # exited on its own, after the run (psutil: no code for a non-child)
        assert not worker.is_running()
        events = httpx.get(f"{stack.api_url}/api/v1/services/{sid}/events", headers=auth).json()
        assert events[-1]["event_type"] == "service.provisioning.completed"


@pytest.mark.slow
def test_a_run_cancelled_in_flight_is_killed_cancelled_and_handed_to_reconcile(
    tmp_path: Path,
) -> None:
    """Cancel in the Prefect UI: the worker kills the run's process alone, its
    on_cancellation hook hands the service to the reconcile flow, the run ends Cancelled."""
    with running_stack(tmp_path, FIBERFLOW_RECONCILE_INTERVAL_SECONDS="0") as stack:
        wait_healthy(stack.api_url, stack.proc)
        sid, auth, ports = start_slow_provisioning(stack, "48575443AABBCC03")
        service_url = f"{stack.api_url}/api/v1/services/{sid}"
        run_url = f"http://127.0.0.1:{stack.prefect_port}/api/flow_runs/"
        run_url += httpx.get(service_url, headers=auth).json()["flow_run_id"]
        pid = int(httpx.get(run_url).json()["infrastructure_pid"])
        cancelling = {"state": {"type": "CANCELLING", "name": "Cancelling"}}
        assert httpx.post(f"{run_url}/set_state", json=cancelling).json()["status"] == "ACCEPT"
        svc: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            svc = httpx.get(service_url, headers=auth).json()
            if svc["status"] == "failed":
                break
            time.sleep(0.5)
        assert svc["status"] == "failed" and "flow run cancelled" in svc["error"], svc
        assert httpx.get(run_url).json()["state"]["type"] == "CANCELLED"
        assert not psutil.pid_exists(pid)
        assert admin_call(ports["olt-1"], "dump") == {"onts": [], "service_ports": []}
        events = httpx.get(f"{service_url}/events", headers=auth).json()
        kinds = [e["event_type"] for e in events]
        assert kinds[-1] == "service.provisioning.failed" and kinds.count(kinds[-1]) == 1
