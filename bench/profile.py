"""Optional sampling profile of a relay process during a measurement (py-spy, when
installed: ``pip install py-spy``), summarised as the functions with the most samples."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path


class Profiler:
    """``py-spy record`` on one process, in collapsed-stack ("raw") format."""

    def __init__(self, pid: int, output: Path, rate: int = 250) -> None:
        self.output = output
        self.proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("py-spy") or str(
            Path(__file__).resolve().parents[1] / ".venv/bin/py-spy"
        )
        if not Path(binary).exists():
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self.argv = [
            binary,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
        ]

    def start(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        log = self.output.with_suffix(".log").open("wb")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _function(frame: str) -> str:
    # "name (path/to/module.py:123)" -> "name (module.py)"
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    return f"{name} ({Path(file).name})" if file else name


def summarize(path: Path, top: int = 12) -> list[tuple[str, float, float]]:
    """(function, % of samples with it on the stack, % of samples in it): the ``top``
    functions by own samples, then the ``top`` by inclusive share below 50 % (the event
    loop's own frames are on most stacks). Idle samples are left out by py-spy."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";") if f]
        total += n
        for fn in set(frames):
            inclusive[fn] += n
        if frames:
            own[frames[-1]] += n
    if not total:
        return []
    by_own = [fn for fn, _ in own.most_common(top)]
    # the chain of frames every loop sample shares (uvicorn, asyncio) says nothing
    by_incl = [fn for fn, c in inclusive.most_common() if c / total < 0.5][:top]
    chosen = by_own + [fn for fn in by_incl if fn not in by_own]
    return [(fn, inclusive[fn] / total * 100, own[fn] / total * 100) for fn in chosen]
