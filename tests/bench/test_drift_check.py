"""bench.drift_check at its tiny size, run as a user runs it: the services drifted by
hand are the ones found and repaired, a second check finds nothing, and every device
was read (no timings asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.test_bench_smoke import HANG_GUARD, run_bench

HANG_GUARD.setdefault("drift_check", 900)  # a hang guard, not a performance bound


@pytest.mark.slow
def test_drift_check_small(tmp_path: Path) -> None:
    text, data = run_bench("drift_check", tmp_path, "--small")
    assert "## Fleet drift check" in text and "services/s" in text
    assert data["errors"] == [] and not data["low_memory"]
    assert data["services"] == 20 and len(data["drifted_ids"]) == 5
    report = data["report"]
    assert report["status"] == "completed" and data["state"] == "COMPLETED"
    assert (report["services_checked"], report["in_sync"]) == (20, 15)
    assert (report["repaired"], report["failed"]) == (5, 0)
    assert {d["service_id"] for d in report["drifted"]} == set(data["drifted_ids"])
    assert set(report["devices_read"]) == {"olt-1", "olt-2", "bng-1", "radius"}
    assert report["orphans"] == [] and report["unreadable"] == []
    assert data["after"] == {"status": "completed", "services_checked": 20, "drifted": []}
    assert data["peak_worker_rss_mb"] > 0
    # The check's own reads: one session per CLI device.
    assert {name: r["sessions"] for name, r in data["reads"].items()} == {
        "olt-1": 1, "olt-2": 1, "bng-1": 1}  # fmt: skip
