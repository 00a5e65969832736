"""`fiberflow up` end to end: real Redis, databases and Prefect server, stopped by signal."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
from httpx_sse import connect_sse
from sqlalchemy import text

from fiberflow.core.db.engine import make_engine
from fiberflow.flows.deployments import DEPLOYMENTS
from fiberflow.lab.harness import FIBERFLOW, processes_of, running_stack, stack_env, wait_healthy
from tests.fixtures.databases import throwaway_pg_database
from tests.fixtures.redis import SHARED_REDIS_URL

pytestmark = pytest.mark.slow


def _stop_and_check_nothing_left(stack, signum: int = signal.SIGTERM) -> None:  # type: ignore[no-untyped-def]
    children = stack.info()["children"]
    assert set(children) >= {"prefect-server", "api", "lab", "worker"}
    stack.proc.send_signal(signum)
    stack.proc.wait(30)  # DESIGN: every child stopped within 30 s
    time.sleep(0.5)
    for name, pid in children.items():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, (
            name
        )
    assert processes_of(stack.data_dir) == []
    assert not (stack.data_dir / "stack.json").exists()


def test_up_on_embedded_defaults_serves_health_and_prefect(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        report = wait_healthy(stack.api_url, stack.proc)
        assert report["db"] == "ok" and report["redis"] == "ok" and report["prefect"] == "ok"
        info = stack.info()
        assert info["redis_url"].startswith("redis://127.0.0.1:")
        # Its own PostgreSQL for the project and the Prefect server (no SQLite file).
        assert info["database_url"].startswith("postgresql://postgres@127.0.0.1:")
        assert info["database_url"].endswith("/fiberflow")
        assert (stack.data_dir / "postgres" / "PG_VERSION").exists()
        assert "postgres" in info["children"]
        prefect = httpx.get(f"http://127.0.0.1:{stack.prefect_port}/api/health", timeout=5)
        assert prefect.status_code == 200
        ui = httpx.get(f"http://127.0.0.1:{stack.prefect_port}/", timeout=5)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        assert not (stack.data_dir / "prefect" / "prefect.db").exists()
        prefect_db = info["database_url"].rpartition("/")[0] + "/prefect"
        engine = make_engine(prefect_db)
        with engine.connect() as conn:
            names = set(conn.execute(text("SELECT name FROM deployment")).scalars())
        engine.dispose()
        assert {spec.name for spec in DEPLOYMENTS} <= names
        _stop_and_check_nothing_left(stack)


def test_two_stacks_side_by_side_on_postgres_and_machine_redis(
    tmp_path: Path, pg_database: str
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        throwaway_pg_database("fiberflow_prefect") as prefect_db,
        running_stack(tmp_path / "a") as a,
        running_stack(
            tmp_path / "b",
            FIBERFLOW_DATABASE_URL=pg_database,
            FIBERFLOW_PREFECT_DATABASE_URL=prefect_db,
            FIBERFLOW_REDIS_URL=SHARED_REDIS_URL,  # this test worker's database
        ) as b,
    ):
        assert wait_healthy(a.api_url, a.proc)["db"] == "ok"
        assert set(wait_healthy(b.api_url, b.proc).values()) == {"ok"}
        assert b.info()["redis_url"] == SHARED_REDIS_URL
        assert "redis" not in b.info()["children"]
        # b's Prefect server keeps its deployments in PostgreSQL, not in a SQLite file.
        assert not (b.data_dir / "prefect" / "prefect.db").exists()
        engine = make_engine(prefect_db)
        with engine.connect() as conn:
            names = set(conn.execute(text("SELECT name FROM deployment")).scalars())
        engine.dispose()
        assert {spec.name for spec in DEPLOYMENTS} <= names
        _stop_and_check_nothing_left(b, signal.SIGINT)
        _stop_and_check_nothing_left(a)


def _up_fails(tmp_path: Path, *args: str, **env: str) -> str:
    data_dir = env.pop("data_dir", str(tmp_path / "data"))
    proc = subprocess.run(
        [*FIBERFLOW, "up", "--data-dir", data_dir, *args],
        env=stack_env(Path(data_dir), **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert processes_of(Path(data_dir)) == []
    return lines[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"FIBERFLOW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "FIBERFLOW_DATABASE_URL",
        ),
        ({"FIBERFLOW_DATABASE_URL": "mysql+nothing://x"}, "FIBERFLOW_DATABASE_URL"),
        ({"FIBERFLOW_DATABASE_URL": "::not a url::"}, "FIBERFLOW_DATABASE_URL"),
        (
            {"FIBERFLOW_PREFECT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "FIBERFLOW_PREFECT_DATABASE_URL",
        ),
        ({"FIBERFLOW_PREFECT_DATABASE_URL": "mysql://x/y"}, "FIBERFLOW_PREFECT_DATABASE_URL"),
        ({"FIBERFLOW_REDIS_URL": "redis://127.0.0.1:1/0"}, "FIBERFLOW_REDIS_URL"),
        ({"FIBERFLOW_REDIS_URL": "http://nope"}, "FIBERFLOW_REDIS_URL"),
        ({"FIBERFLOW_DEV_MODE": "0"}, "FIBERFLOW_JWT_SECRET"),
        ({"FIBERFLOW_DEV_MODE": "0", "FIBERFLOW_JWT_SECRET": "changeme"}, "FIBERFLOW_JWT_SECRET"),
        ({"FIBERFLOW_INVENTORY": "/nonexistent/inventory.yaml"}, "FIBERFLOW_INVENTORY"),
    ],
)
def test_bad_configuration_exits_with_one_line_naming_the_setting(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    assert expected in _up_fails(tmp_path, **env)


def test_unwritable_data_dir_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = _up_fails(tmp_path, data_dir=str(blocker / "data"))
    assert "FIBERFLOW_DATA_DIR" in line


def test_port_in_use_is_named(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert "--api-port" in _up_fails(tmp_path, "--api-port", str(port))
        assert "--prefect-port" in _up_fails(tmp_path, "--prefect-port", str(port))


def test_up_runs_a_provisioning_end_to_end_through_the_worker(tmp_path: Path) -> None:
    """The whole stack as a user runs it: lab, deployments, worker, API, SSE."""
    with running_stack(tmp_path) as stack:
        report = wait_healthy(stack.api_url, stack.proc)
        assert report == {"db": "ok", "redis": "ok", "prefect": "ok", "worker": "ok",
                          "deployments": "ok", "lab": "ok"}  # fmt: skip
        tenant = "4f1c2a4e-8d7b-4c3a-9e2f-0a1b2c3d4e5f"
        token = subprocess.run(
            [*FIBERFLOW, "token", "--tenant", tenant, "--role", "operator",
             "--data-dir", str(stack.data_dir)],
            env=stack_env(stack.data_dir), capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        body = {"customer_ref": "cust-e2e", "plan": "100M", "olt": "olt-2",
                "pon_port": "0/2/15", "ont_serial": "485754431A2B3C4D"}  # fmt: skip
        # The POST waits for the Prefect server to create the run: generous on a loaded box.
        created = httpx.post(
            f"{stack.api_url}/api/v1/services", json=body, headers=auth, timeout=30
        )
        assert created.status_code == 202, created.text
        sid = created.json()["id"]
        events = []
        url = f"{stack.api_url}/api/v1/realtime/service-lifecycle/{sid}"
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=90)) as client,
            connect_sse(client, "GET", url, headers={**auth}) as source,
        ):
            assert source.response.status_code == 200
            for sse in source.iter_sse():
                if not sse.data:
                    # httpx-sse 0.4 hands a heartbeat comment over as an empty message
                    # (the spec dispatches nothing for a block without data): skip it.
                    continue
                events.append((sse.event, sse.json()))
                if sse.event.endswith((".completed", ".failed")):
                    break
        assert events[-1][0] == "service.provisioning.completed", events[-1]
        progress = [d for k, d in events if k.endswith(".progress")]
        assert progress[0]["step"] == 1 and progress[-1]["status"] == "completed"
        svc = httpx.get(f"{stack.api_url}/api/v1/services/{sid}", headers=auth).json()
        assert svc["status"] == "active" and isinstance(svc["vlan"], int)
        assert svc["flow_run_id"] == created.json()["flow_run_id"]
        run = httpx.get(f"http://127.0.0.1:{stack.prefect_port}/api/flow_runs/{svc['flow_run_id']}")
        assert run.json()["state"]["type"] == "COMPLETED"

        # `fiberflow worker` joins the same stack: a second worker polls the same pool.
        extra = subprocess.Popen(
            [*FIBERFLOW, "worker", "--data-dir", str(stack.data_dir), "--name", "extra"],
            env=stack_env(stack.data_dir), stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            pool = f"http://127.0.0.1:{stack.prefect_port}/api/work_pools/fiberflow/workers/filter"
            online: set[str] = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(online) < 2:
                workers = httpx.post(pool, json={}).json()
                online = {w["name"] for w in workers if w["status"] == "ONLINE"}
                time.sleep(0.5)
            assert "extra" in online and len(online) == 2, online
        finally:
            os.killpg(extra.pid, signal.SIGTERM)
            extra.wait(30)
        _stop_and_check_nothing_left(stack)
