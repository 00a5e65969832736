"""Each benchmark at a tiny size, run as a user runs it (``python -m bench.<name>``), so
they don't rot. The figures themselves are not asserted (no timed assertions): only
that the run completes, writes its table, and that what it counted is consistent —
every published event reached every client exactly once, every hooked task stored its
event, every provisioning completed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.servers import REPO, clean_env

# Hang guards for the subprocesses, not performance bounds.
HANG_GUARD = {
    "sse_fanout": 240,
    "hook_overhead": 240,
    "lifecycle_throughput": 600,
    "scale_out": 600,
    "load": 900,
    "bulk_suspension": 900,
}


def run_bench(name: str, tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """Run ``bench.<name>`` into tmp_path; returns its markdown and its JSON figures."""
    md, data = tmp_path / "benchmarks.md", tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args, "--output", str(md), "--json", str(data)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD[name],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return md.read_text(), json.loads(data.read_text())


def test_sse_fanout_small(tmp_path: Path) -> None:
    text, data = run_bench("sse_fanout", tmp_path, "--small")
    assert text.startswith("# Benchmarks") and "## SSE fan-out" in text
    assert "shared reader (fiberflow API)" in text and "pub/sub per connection" in text
    assert "load average" in text and "cores" in text
    points = {p["design"]: p for p in data["points"]}
    assert set(points) == {"fiberflow", "pubsub"}
    for design, p in points.items():
        counts = p["counts"]
        assert p["connected"] == p["clients"] == 5, (design, p["connect_errors"])
        assert counts["expected"] > 0, design
        assert counts["received"] == counts["expected"], (design, counts)
        assert counts["lost"] == counts["duplicates"] == counts["out_of_order"] == 0, design
        assert counts["foreign"] == 0, design  # never another service's event
        assert p["latency_ms"]["n"] == counts["received"]
        assert p["latency_ms"]["p50"] > 0 and p["relay_ms"]["n"] == counts["received"]
    assert data["floor"]["n"] == 10


def test_hook_overhead_small(tmp_path: Path, prefect_server: str) -> None:
    text, data = run_bench("hook_overhead", tmp_path, "--small", "--prefect-api", prefect_server)
    assert "## Hook overhead" in text and "ratio p50" in text
    (result,) = data["results"]
    assert result["pairs"] == 10
    assert result["bare_ms"]["n"] == result["hooked_ms"]["n"] == 10
    # The hooks really published: one stored event per hooked call, none for bare calls.
    assert result["stored"] == result["hooked_calls"]
    assert [a["synchronous"] for a in data["publish_alone_ms"]] == ["FULL", "NORMAL"] * 2


def _check_runs(runs: list[dict[str, Any]], n: int) -> None:
    assert len(runs) == n
    for r in runs:
        assert r["status"] == 202, r
        assert r["outcome"] == "completed", r
        assert r["first_progress_ts"] is not None and r["first_progress_rx"] is not None
        # Step 1 announced by the API at the request, then the run's own step 1.
        assert [s for s, _ts in r["steps"][:2]] == ["queued", "validating"]
        assert r["steps"][-1][0] == "completed"


@pytest.mark.slow
def test_lifecycle_throughput_small(tmp_path: Path) -> None:
    text, data = run_bench("lifecycle_throughput", tmp_path, "--small")
    assert "## Lifecycle throughput" in text and "1 provisioning alone (baseline)" in text
    # Both worker modes, each in a stack of its own, in one run (the cold one is the
    # baseline of the warm one).
    assert set(data["modes"]) == {"warm", "cold"}
    for mode in data["modes"].values():
        _check_runs(mode["alone"], 1)
        _check_runs(mode["runs"], 2)
        # The sampler found the flow-run processes (forked or spawned).
        assert mode["peak_run_processes"] >= 1 and mode["run_process_rss_mb"]
        ids = [r["service_id"] for r in mode["runs"]]
        assert all(mode["device_seconds"].get(i, 0) > 0 for i in ids)  # commands audited
        # The lab counted the burst on each device, within its session limit.
        lab = mode["lab"]
        assert {"olt-1", "bng-1"} <= set(lab), lab
        assert all(0 < c["peak_open"] <= c["limit"] and c["commands"] > 0 for c in lab.values()
                   if c["logins"])  # fmt: skip
        assert lab["bng-1"]["logins"] >= 2  # two provisionings configured it
    assert "floor s" in text


@pytest.mark.slow
def test_scale_out_small_with_two_workers(tmp_path: Path) -> None:
    text, data = run_bench("scale_out", tmp_path, "--small", "--workers", "2")
    assert "## Scale-out" in text
    (entry,) = data["sweep"]
    assert entry["workers"] == 2
    _check_runs(entry["runs"], 2)


@pytest.mark.slow
def test_load_small(tmp_path: Path) -> None:
    text, data = run_bench("load", tmp_path, "--small")
    assert "## Load" in text and "provisioning alone (baseline)" in text
    assert data["errors"] == [] and data["refused_409"] == 0
    assert [r["operation"] for r in data["baseline"]] == [
        "provisioning", "suspension", "resumption", "termination"
    ]  # fmt: skip
    assert all(r["outcome"] == "completed" for r in data["baseline"])
    runs = data["runs"]
    assert len(runs) == 5 and runs[0]["operation"] == "provisioning"
    assert all(r["status"] == 202 and r["outcome"] == "completed" for r in runs), runs
    assert data["services"] == sum(r["operation"] == "provisioning" for r in runs)
    sse = data["sse"]
    assert sse["clients"] == sse["connected"] == 20, data["listener_errors"]
    assert sse["connect_errors"] == 0
    assert sse["planned_reconnects"] > 0 and sse["connections"] >= 20 + sse["planned_reconnects"]
    # Every listener got every event from its start point on, once, in order.
    assert sse["delivered"] >= 20
    assert sse["lost"] == sse["duplicates"] == sse["out_of_order"] == sse["unknown"] == 0, sse
    assert sse["bad_start"] == 0
    assert data["history_events"] > 0 and data["peak_in_flight"] >= 1


@pytest.mark.slow
def test_bulk_suspension_small(tmp_path: Path) -> None:
    text, data = run_bench("bulk_suspension", tmp_path, "--small")
    assert "## Bulk suspension" in text and "single POSTs, same pace (baseline)" in text
    assert data["errors"] == [], data["errors"]
    bulk, base = data["bulk"], data["baseline"]
    assert bulk["status"] == "completed" and bulk["counts"]["completed"] == 6
    assert bulk["pace"]["starts"] == 6 and base["statuses"] == {"suspended": 3}
    sse = bulk["sse"]
    # Every listener got every one of the bulk's events, once, in order.
    assert sse["connected"] == sse["completed"] == 5 and bulk["events"] >= 2
    assert sse["delivered"] == 5 * bulk["events"] and sse["lost"] == sse["duplicates"] == 0
    assert all(peak <= data["limits"][name] for name, peak in bulk["peaks"].items())
