"""The CLI as a user runs it: a subprocess, one line of error, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jwt
import pytest
from sqlalchemy import inspect

from fiberflow.core.db.engine import make_engine
from fiberflow.lab.harness import FIBERFLOW, stack_env

TENANT = "4f1c2a4e-8d7b-4c3a-9e2f-0a1b2c3d4e5f"


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FIBERFLOW, *args],
        env=stack_env(tmp_path / "data", **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_token_prints_a_verifiable_jwt_alone(tmp_path: Path) -> None:
    secret = "x" * 40
    proc = run(tmp_path, "token", "--tenant", TENANT, "--role", "customer", "--sub", "cust-1",
               FIBERFLOW_DEV_MODE="0", FIBERFLOW_JWT_SECRET=secret)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    claims = jwt.decode(lines[0], secret, algorithms=["HS256"])
    assert claims["sub"] == "cust-1" and claims["tenant_id"] == TENANT
    assert claims["role"] == "customer" and "exp" in claims
    assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--tenant", "not-a-uuid", "--role", "operator"], "--tenant"),
        (["--tenant", TENANT, "--role", "admin"], "--role"),
        (["--tenant", TENANT, "--role", "operator", "--ttl-hours", "-1"], "--ttl-hours"),
    ],
)
def test_token_bad_input(tmp_path: Path, args: list[str], named: str) -> None:
    proc = run(tmp_path, "token", *args)
    assert proc.returncode == 2
    assert named in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_token_without_key_outside_dev_mode(tmp_path: Path) -> None:
    proc = run(tmp_path, "token", "--tenant", TENANT, "--role", "operator", FIBERFLOW_DEV_MODE="0")
    assert proc.returncode == 2 and "FIBERFLOW_JWT_SECRET" in proc.stderr


def test_db_upgrade_creates_schema_including_freeradius_tables(
    database_url: str, tmp_path: Path
) -> None:
    proc = run(tmp_path, "db", "upgrade", FIBERFLOW_DATABASE_URL=database_url)
    assert proc.returncode == 0, proc.stderr
    tables = set(inspect(make_engine(database_url)).get_table_names())
    assert {"service_instances", "ip_allocations", "vlan_allocations", "event_log",
            "device_command_audit", "radcheck", "radreply", "radusergroup", "radgroupcheck",
            "radgroupreply", "alembic_version"} <= tables  # fmt: skip


def test_db_upgrade_unreachable_database(tmp_path: Path) -> None:
    proc = run(tmp_path, "db", "upgrade", FIBERFLOW_DATABASE_URL="postgresql://x@127.0.0.1:1/db")
    assert proc.returncode == 2
    assert proc.stderr.startswith("fiberflow: FIBERFLOW_DATABASE_URL: cannot connect")
