"""``/metrics``: real values after real runs, in one process and added up across processes.

In-process: flows run in the test process (the ``lifecycle`` fixture), the API is the
in-process app, both on the default registry. Across processes: two writer processes
stand in for flow runs, a real uvicorn API with ``PROMETHEUS_MULTIPROC_DIR`` adds them
up together with its own SSE metrics, as under ``fiberflow up``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import pytest

from fiberflow.core.db.engine import make_engine
from fiberflow.core.metrics import MULTIPROC_ENV, metrics_dir, reset_metrics_dir
from fiberflow.core.settings import Settings
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.publisher import EventPublisher, connect_sync
from fiberflow.flows.provision import provision
from fiberflow.stack.supervisor import Stack, UpOptions
from tests.api.sse import WAIT, SseReader, auth, make_service
from tests.events.helpers import Workflow
from tests.fixtures.api_app import open_api
from tests.fixtures.lifecycle import Lifecycle
from tests.fixtures.sse_api import start_stack
from tests.observability.promtext import total, value

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = ("lifecycle_workflow_started_total", "lifecycle_workflow_completed_total",
            "lifecycle_workflow_failed_total")  # fmt: skip


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_provisioning_runs_show_in_metrics(lifecycle: Lifecycle, tmp_path: Path) -> None:
    inventory = Path(os.environ["FIBERFLOW_INVENTORY"])
    with open_api(lifecycle.database_url, tmp_path / "api", inventory, None) as api:

        def scrape() -> str:
            r = api.client.get("/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            return r.text

        before = scrape()
        ok = lifecycle.new_service(plan="500M")
        provision(ok)
        assert lifecycle.service(ok).status == "active"
        bad = lifecycle.new_service(plan="500M", pon_port="0/3/0")  # refused at validation
        with pytest.raises(Exception, match="pon_port"):
            provision(bad)
        after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def delta_total(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    labels = {"operation": "provisioning", "plan": "500M"}
    assert [delta(n, **labels) for n in WORKFLOW] == [2, 1, 1]
    assert delta("lifecycle_workflow_duration_seconds_count", operation="provisioning") == 2
    assert delta("lifecycle_workflow_duration_seconds_sum", operation="provisioning") > 0
    # Every device the run talked to has latencies (ONT + service-port on the OLT, the
    # sub-interface on the BNG, RADIUS rows, the RADIUS test login).
    for device in ("olt-1", "bng-1", "radius-sql", "radius"):
        n = delta("device_command_duration_seconds_count", device=device)
        assert n >= 1, device
        assert delta_total("device_command_duration_seconds_bucket", device=device) > 0
    assert delta("radius_requests_total", kind="auth", outcome="accept") == 1
    # The families exist before any value: a dashboard finds them on a fresh API.
    for name in ("realtime_sse_connections", "realtime_sse_events_sent", "radius_requests"):
        assert f"# HELP {name}" in after


WRITER = textwrap.dedent(
    """
    import sys
    from fiberflow.core import metrics
    ok = sys.argv[1] == "ok"
    run = "run-" + sys.argv[1]
    metrics.workflow_started(run, "provisioning", "1G")
    metrics.observe_device_command("olt-2", "ont add 0 3 sn-auth 4857544300000001", "", 40.0)
    metrics.observe_device_command("radius", "Access-Request User-Name=u1",
                                   "accept" if ok else "timeout", 15.0)
    metrics.observe_device_command("bng-1", "CoA-Request User-Name=u1", "nak Error-Cause=503", 5)
    metrics.workflow_ended(run, ok=ok, labels=lambda: ("unused", None))
    """
)


def _write_metrics(directory: Path, outcome: str) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(directory), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", WRITER, outcome], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


async def _scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=WAIT) as c:
        r = await c.get(f"{url}/metrics")
        assert r.status_code == 200
        return r.text


async def test_metrics_add_up_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = reset_metrics_dir(tmp_path / "metrics")
    # Two finished flow-run processes left their counters and histograms in the directory.
    _write_metrics(directory, "ok")
    _write_metrics(directory, "failed")
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    redis, api = start_stack(tmp_path / "stack", sse_heartbeat_seconds=0.5)
    engine = make_engine(api.database_url)
    pub = EventPublisher(engine, connect_sync(api.redis_url), coalescer=Coalescer(0))
    try:
        tenant = str(uuid.uuid4())
        wf = Workflow(service_id=make_service(engine, tenant), tenant_id=tenant)
        await asyncio.to_thread(pub.publish, wf.step(1))
        stream = f"{api.url}/api/v1/realtime/service-lifecycle/{wf.service_id}"
        async with (
            httpx.AsyncClient(timeout=WAIT) as client,
            client.stream("GET", stream, headers=auth(api.jwt_key, tenant)) as response,
        ):
            assert response.status_code == 200
            reader = SseReader(response)
            await reader.next()
            await asyncio.to_thread(pub.publish, wf.step(2))
            await asyncio.to_thread(pub.publish, wf.done())
            await reader.take(2)
            open_text = await _scrape(api.url)
        # The writers' values, summed.
        labels = {"operation": "provisioning", "plan": "1G"}
        assert [value(open_text, n, **labels) for n in WORKFLOW] == [2, 1, 1]
        assert value(open_text, "lifecycle_workflow_duration_seconds_count",
                     operation="provisioning") == 2  # fmt: skip
        assert value(open_text, "device_command_duration_seconds_count", device="olt-2") == 2
        assert value(open_text, "device_command_duration_seconds_bucket", device="olt-2",
                     le="0.05") == 2  # fmt: skip
        assert value(open_text, "radius_requests_total", kind="auth", outcome="accept") == 1
        assert value(open_text, "radius_requests_total", kind="auth", outcome="timeout") == 1
        assert value(open_text, "radius_requests_total", kind="coa", outcome="nak") == 2
        # The API's own: one stream open while scraping; three events sent on it.
        assert value(open_text, "realtime_sse_connections") == 1
        sent = {"event_type": "service.provisioning.progress"}
        assert value(open_text, "realtime_sse_events_sent_total", **sent) == 2
        assert value(open_text, "realtime_sse_events_sent_total",
                     event_type="service.provisioning.completed") == 1  # fmt: skip

        # The stream closed: the live gauge drops back (the server notices the close).
        deadline = time.monotonic() + WAIT
        while value(await _scrape(api.url), "realtime_sse_connections") != 0:
            assert time.monotonic() < deadline, "realtime_sse_connections stayed above 0"
            await asyncio.sleep(0.1)
        api_pid = api.proc.pid if api.proc else 0
        api.stop()  # SIGTERM: uvicorn shuts down (lifespan included), then re-raises it
        # A stopped API takes its live gauge out of the sum; counters stay for the next one.
        assert not list(directory.glob(f"gauge_livesum_{api_pid}.db"))
        assert list(directory.glob(f"counter_{api_pid}.db"))
    finally:
        pub.close()
        engine.dispose()
        api.stop()
        redis.stop()


def test_up_gives_every_child_one_metrics_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stale = metrics_dir(data_dir) / "counter_4242.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by an earlier stack")
    settings = Settings(data_dir=data_dir, dev_mode=True)
    env = Stack(settings, UpOptions())._child_env()
    assert env[MULTIPROC_ENV] == str(data_dir / "metrics")
    # ``up`` empties it at start: an earlier stack's counters would add up with ours.
    assert reset_metrics_dir(metrics_dir(data_dir)) == data_dir / "metrics"
    assert list((data_dir / "metrics").iterdir()) == []
