"""Structured logs of flow runs: the fields operators filter on, as JSON lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fiberflow.core.logs import JsonFormatter
from fiberflow.flows.provision import provision
from tests.fixtures.lifecycle import TENANT, Lifecycle

REPO = Path(__file__).resolve().parents[2]
RUN_FIELDS = {"service_id", "tenant_id", "flow_run_id", "operation"}


def _json(records: list[logging.LogRecord], message: str) -> list[dict[str, Any]]:
    fmt = JsonFormatter()
    return [json.loads(fmt.format(r)) for r in records if r.getMessage() == message]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_flow_run_logs_carry_the_structured_fields(
    lifecycle: Lifecycle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sid = lifecycle.new_service()
    provision(sid)
    flow_run_id = lifecycle.service(sid).flow_run_id
    ours = [r for r in caplog.records if r.name.startswith(("fiberflow.tasks", "fiberflow.flows"))]

    started = _json(ours, "flow run started")
    assert len(started) == 1
    assert started[0]["service_id"] == sid and started[0]["flow_run_id"] == flow_run_id

    steps = _json(ours, "step done")
    assert {s["step"] for s in steps} >= {"validating", "allocating", "configuring",
                                          "activating", "testing", "completed"}  # fmt: skip
    for s in steps:
        assert s.keys() >= RUN_FIELDS and s["status"] == "done"
        assert (s["service_id"], s["tenant_id"], s["flow_run_id"]) == (sid, TENANT, flow_run_id)
        assert isinstance(s["duration_ms"], float) and s["duration_ms"] >= 0

    commands = _json(ours, "device command")
    assert {c["device"] for c in commands} >= {"olt-1", "bng-1", "radius-sql", "radius"}
    for c in commands:
        assert c.keys() >= RUN_FIELDS | {"step", "status", "duration_ms"}
        # "failed": the device refused the line (e.g. a look-up of an ONT not there yet).
        assert c["service_id"] == sid and c["status"] in ("ok", "failed")

    (done,) = _json(ours, "flow run completed")
    assert done["status"] == "completed" and done["service_id"] == sid
    assert done["duration_ms"] > max(s["duration_ms"] for s in steps)


CHILD = textwrap.dedent(
    """
    import logging, sys
    from prefect.logging.configuration import setup_logging
    from fiberflow.core.logs import configure_flow_run_process

    setup_logging()  # as in a flow-run process: Prefect owns the root logger
    assert configure_flow_run_process("INFO", json_lines=True)
    assert not configure_flow_run_process("INFO", json_lines=True)  # once per process
    logging.getLogger("fiberflow.tasks.hooks").info(
        "step done", extra={"service_id": "s-1", "tenant_id": "t-1", "flow_run_id": "r-1",
                            "step": "configuring", "status": "done", "duration_ms": 12.5,
                            "device": "olt-1"})
    logging.getLogger("fiberflow.devices.olt.huawei").debug("below the level: not shown")
    """
)


def test_a_worker_started_flow_run_logs_json_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(REPO), PREFECT__FLOW_RUN_ID="8d3f5a8e-0000-4000-8000-000000000001",
               PREFECT_HOME=str(tmp_path))  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr  # ours only, not Prefect's console as well
    doc = json.loads(lines[0])
    assert doc["message"] == "step done" and doc["logger"] == "fiberflow.tasks.hooks"
    assert {k: doc[k] for k in ("service_id", "tenant_id", "flow_run_id", "step", "status",
                                "duration_ms", "device")} == {  # fmt: skip
        "service_id": "s-1", "tenant_id": "t-1", "flow_run_id": "r-1", "step": "configuring",
        "status": "done", "duration_ms": 12.5, "device": "olt-1"}  # fmt: skip


def test_flows_called_in_process_keep_the_root_handlers() -> None:
    from fiberflow.core.logs import configure_flow_run_process

    assert "PREFECT__FLOW_RUN_ID" not in os.environ
    assert configure_flow_run_process("INFO", json_lines=True) is False
    assert logging.getLogger("fiberflow").propagate
