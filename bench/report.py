"""Figures and their markdown: percentiles, the machine and its load, the table appended
to docs/benchmarks.md."""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"

HEADER = """# Benchmarks

Runs appended by the commands under `bench/` (see docs/benchmarks.md in the repository
for how each is measured). Each table carries the machine, its load average and a
baseline measured in the same run.

"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def load_1m() -> float:
    return os.getloadavg()[0]


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores, {mem:.1f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Dist:
    """p50/p95/p99/max of a sample, in the sample's unit."""

    n: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Dist:
        s = sorted(values)
        return cls(
            len(s),
            percentile(s, 50),
            percentile(s, 95),
            percentile(s, 99),
            s[-1] if s else math.nan,
        )

    def scaled(self, factor: float) -> Dist:
        return Dist(
            self.n, self.p50 * factor, self.p95 * factor, self.p99 * factor, self.max * factor
        )


def num(value: float | int | None, digits: int = 1) -> str:
    """A figure for a table cell: '—' for missing / nan."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    """One benchmark run as appended to the output file."""

    title: str
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_before: str = field(default_factory=load_average)
    tables: list[tuple[str, Table]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the figures as plain data (``--json``; the smoke tests read it)
    data: dict[str, Any] = field(default_factory=dict)

    def command(self) -> str:
        module = self.argv[0]
        if module.endswith(".py"):
            rel = Path(module).resolve().relative_to(REPO).with_suffix("")
            module = "-m " + ".".join(rel.parts)
        return f".venv/bin/python {module} " + shlex.join(self.argv[1:])

    def markdown(self) -> str:
        out = [
            f"## {self.title} — {self.started:%Y-%m-%d %H:%M} UTC",
            "",
            f"- command: `{self.command().strip()}`",
            f"- machine: {machine()}",
            f"- load average (1/5/15 min) at start: {self.load_before}; at end: {load_average()}",
            "",
        ]
        for caption, table in self.tables:
            if caption:
                out += [caption, ""]
            out += [table.markdown(), ""]
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out).rstrip() + "\n\n"

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.data, indent=1, default=str))

    def save(self, output: Path, json_path: Path | None) -> None:
        """Append the markdown to ``output``; with ``json_path`` also write the data."""
        self.append_to(output)
        if json_path is not None:
            self.write_json(json_path)

    def append_to(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.markdown()
        if not path.exists() or not path.read_text().strip():
            text = HEADER + text
        with path.open("a") as f:
            f.write(text)
