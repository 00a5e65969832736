"""Installing: a plain (non-editable) install of the package adds exactly one import name
to site-packages, ``fiberflow``, and ``fiberflow up`` from another directory works:
migrations, the RADIUS dictionary, the TextFSM templates and the portal assets ship
inside the package."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from fiberflow.lab.harness import processes_of, wait_healthy
from tests.fixtures.stack import REPO

pytestmark = pytest.mark.slow


def test_wheel_install_runs_the_stack_from_elsewhere(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(dist), str(REPO)],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    wheel = next(dist.glob("fiberflow-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # Dependencies come from the test venv's site-packages via PYTHONPATH, which (unlike
    # a site dir) does not run .pth files: the editable install's finder stays off, so
    # fiberflow itself can only come from the wheel.
    deps = site.getsitepackages()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIBERFLOW_", "PREFECT_"))}
    env.update(PYTHONPATH=deps, FIBERFLOW_DEV_MODE="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
         str(env_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" /
             "site-packages"), str(wheel)],
        check=True,
    )  # fmt: skip
    site_dir = (
        env_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    )
    # What became importable (``bin/`` holds the console script under ``--target``).
    installed = sorted(
        p.name
        for p in site_dir.iterdir()
        if (p / "__init__.py").exists() or p.suffix in (".py", ".so", ".pth")
    )
    assert installed == ["fiberflow"], f"site-packages got {installed}: one import root only"
    (top_level,) = site_dir.glob("fiberflow-*.dist-info/top_level.txt")
    assert top_level.read_text().split() == ["fiberflow"]
    assert not any((site_dir / "fiberflow" / room).is_symlink() for room in ("api", "core", "lab"))
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    probe = subprocess.run(
        [str(py), "-c", "import fiberflow.devices.radius, fiberflow.api, fiberflow.flows, "
         "fiberflow.lab; print(fiberflow.__file__)"],
        env=env, cwd=workdir, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert str(REPO) not in probe.stdout, "fiberflow was imported from the source tree"

    from fiberflow.stack.procs import free_port

    data_dir = workdir / ".fiberflow"
    api_port, prefect_port = free_port(), free_port()
    launcher = "import sys; from fiberflow.stack.cli import main; sys.argv[0] = 'fiberflow'; main()"
    with (tmp_path / "up.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(py), "-c", launcher, "up", "--api-port", str(api_port),
             "--prefect-port", str(prefect_port)],
            env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        report = wait_healthy(f"http://127.0.0.1:{api_port}", proc)
        assert set(report.values()) == {"ok"}, report
        assert data_dir.is_dir()  # the default data dir is relative to where `up` runs
    finally:
        proc.terminate()
        proc.wait(40)
    assert processes_of(data_dir) == []
