"""bench.reprovision_bulk at its tiny size, run as a user runs it: the counts must be what
was seeded and drifted, and the drift must be gone afterwards (no timings asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.test_bench_smoke import HANG_GUARD, run_bench

HANG_GUARD.setdefault("reprovision_bulk", 600)  # a hang guard, not a performance bound


@pytest.mark.slow
def test_reprovision_bulk_small(tmp_path: Path) -> None:
    text, data = run_bench("reprovision_bulk", tmp_path, "--small")
    assert "## Bulk reprovisioning" in text and "1 service alone (in sync)" in text
    assert data["errors"] == [] and not data["low_memory"]
    services, drifted = data["services"], set(data["drifted_ids"])
    assert services == 6 and len(drifted) == 2
    # the drift was really there before the run, on exactly the drifted services
    assert set(data["drifted_seen_before"]) == drifted

    bulk, alone_in_sync, alone_drifted = data["runs"]
    assert bulk["state"] == "COMPLETED"
    # The nightly run is the fleet drift check: services in sync get no run ("not run").
    assert bulk["counts"] == {"in_sync": 0, "repaired": 2, "failed": 0, "not run": 4}
    repaired = {o["service_id"] for o in bulk["outcomes"] if o["result"] == "repaired"}
    assert repaired == drifted
    assert bulk["bad_after"] == {}  # every service's devices and RADIUS match its row
    assert all(
        o["device_s"] > 0 and o["steps"] for o in bulk["outcomes"] if o["result"] != "not run"
    )
    assert bulk["run_pid"] is not None  # one flow-run process ran every subflow

    assert alone_in_sync["counts"]["in_sync"] == 1 and alone_in_sync["bad_after"] == {}
    assert alone_drifted["counts"]["repaired"] == 1 and alone_drifted["bad_after"] == {}
