"""A larger lab (``olts=N``): olt-3.. each on a BNG of its own, the default lab unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiberflow.core.db.migrate import upgrade
from fiberflow.devices.bng import CiscoBng
from fiberflow.devices.inventory import load_inventory
from fiberflow.lab.lab_inventory import MAX_OLTS, bng_names, bng_of, capacity, ip_pool
from fiberflow.lab.runner import LabStack


def test_layout_and_capacity() -> None:
    assert [bng_of(f"olt-{k}") for k in (1, 2, 3, 7)] == ["bng-1", "bng-1", "bng-2", "bng-6"]
    assert bng_names(2) == ["bng-1"] and bng_names(4) == ["bng-1", "bng-2", "bng-3"]
    assert ip_pool("bng-1") == ("100.64.0.0/16", "100.64.0.1")
    assert ip_pool("bng-6") == ("100.69.0.0/16", "100.69.0.1")
    # VLANs 100-3999 per BNG are what bounds it: olt-1 and olt-2 share bng-1's.
    assert capacity(1) == capacity(2) == 3900
    assert capacity(7) == 23_400 >= 20_000
    for bad in (0, MAX_OLTS + 1):
        with pytest.raises(ValueError, match="OLTs"):
            bng_names(bad)


def test_a_lab_of_three_olts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    upgrade(url)
    with LabStack(url, olts=3, ont_online_delay=0.1) as lab:
        inv = load_inventory(lab.write_inventory(tmp_path / "inv.yaml"))
        assert inv == lab.inventory
        assert [(o.name, o.bng) for o in inv.olts] == [
            ("olt-1", "bng-1"), ("olt-2", "bng-1"), ("olt-3", "bng-2")]  # fmt: skip
        assert [(b.name, b.ip_pool) for b in inv.bngs] == [
            ("bng-1", "100.64.0.0/16"), ("bng-2", "100.65.0.0/16")]  # fmt: skip
        assert lab.bng is lab.bngs["bng-1"]
        assert set(lab.describe()["admin"]["devices"]) == {
            "olt-1", "olt-2", "olt-3", "bng-1", "bng-2"}  # fmt: skip
        # bng-2 is a device of its own, reached through the inventory like bng-1.
        bng = CiscoBng(inv.bng("bng-2"))
        bng.add_subscriber(100, "100.65.0.2", "255.255.0.0", "PLAN-1G-IN", "PLAN-1G-OUT", "ff-x")
        assert lab.bngs["bng-2"].state.get("GigabitEthernet0/0/1.100") is not None
        assert lab.bng.state.get("GigabitEthernet0/0/1.100") is None
