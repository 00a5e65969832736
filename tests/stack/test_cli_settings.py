"""A malformed setting at start-up: one line naming the setting and the bad part, exit
2, no traceback, nothing started (the CLI as a user runs it: a subprocess)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fiberflow.lab.harness import FIBERFLOW, free_port, stack_env

COMMANDS = {
    "up": ["up", "--api-port", "{port}", "--prefect-port", "{port2}"],
    "api": ["api", "--port", "{port}"],
    "worker": ["worker"],
}


def _run(tmp_path: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    ports = {"port": str(free_port()), "port2": str(free_port())}
    args = [a.format(**ports) for a in COMMANDS[command]]
    return subprocess.run(
        [*FIBERFLOW, *args, "--data-dir", str(tmp_path / "data")],
        env=stack_env(tmp_path / "data", **env),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_malformed_blackout_is_one_line_naming_the_part(tmp_path: Path, command: str) -> None:
    proc = _run(
        tmp_path, command, FIBERFLOW_BULK_BLACKOUT="Sat 00:00-Mon 06:00,Mon 25:00-Tue 01:00"
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fiberflow: FIBERFLOW_BULK_BLACKOUT: 'Mon 25:00-Tue 01:00'"), lines
    assert "Sat 00:00-Mon 06:00" not in lines[0]  # only the bad part is named
    assert not (tmp_path / "data" / "stack.json").exists()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FIBERFLOW_BULK_RATE": "fast"}, "fiberflow: FIBERFLOW_BULK_RATE: 'fast': "),
        ({"FIBERFLOW_APPROVAL_THRESHOLD": "-3"}, "fiberflow: FIBERFLOW_APPROVAL_THRESHOLD: '-3': "),
        ({"FIBERFLOW_EVENT_SENDER": "redis"}, "fiberflow: FIBERFLOW_EVENT_SENDER: 'redis': "),
    ],
)
def test_any_bad_setting_is_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    proc = _run(tmp_path, "api", **env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
