"""`fiberflow lab` as a subprocess on a data dir of its own, and `fiberflow lab ...`
commands run against it, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiberflow.devices.inventory import Inventory, load_inventory
from fiberflow.lab.harness import FIBERFLOW, stack_env


@dataclass
class LabProcess:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    env: dict[str, str]
    log: Path

    def ready(self, timeout: float = 60) -> dict[str, Any]:
        lab_file = self.data_dir / "lab.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if lab_file.exists():
                doc: dict[str, Any] = json.loads(lab_file.read_text())
                if doc.get("pid") == self.proc.pid:  # not a stale file of an earlier run
                    return doc
            if self.proc.poll() is not None:
                raise AssertionError(f"lab exited {self.proc.returncode}: {self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"no lab.json within {timeout} s: {self.output()}")

    @property
    def inventory(self) -> Inventory:
        return load_inventory(self.ready()["inventory"])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``fiberflow <args> --data-dir <this lab's>`` to the end."""
        return subprocess.run(
            [*FIBERFLOW, *args, "--data-dir", str(self.data_dir)],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


def start_lab(data_dir: Path, *args: str, **env: str) -> LabProcess:
    """``fiberflow lab --data-dir data_dir *args``, started (not yet ready)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    environ = stack_env(data_dir, **env)
    log = data_dir.parent / f"{data_dir.name}-lab.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*FIBERFLOW, "lab", "--data-dir", str(data_dir), *args],
            env=environ, stdout=out, stderr=subprocess.STDOUT, cwd=data_dir.parent,
            start_new_session=True,
        )  # fmt: skip
    return LabProcess(proc, data_dir, environ, log)
