"""The driver registry: the inventory's platform picks the driver; unknown ones fail at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fiberflow.devices.base import CommandRecord
from fiberflow.devices.bng import BngDriver, CiscoBng
from fiberflow.devices.inventory import Bng, InventoryError, Olt, load_inventory, parse_inventory
from fiberflow.devices.olt import HuaweiOlt, OltDriver
from fiberflow.devices.registry import BNG_DRIVERS, OLT_DRIVERS, bng_driver, olt_driver


def _inventory(olt_platform: str | None = None, bng_platform: str | None = None) -> Any:
    olt: dict[str, Any] = {"name": "olt-1", "host": "127.0.0.1", "username": "lab",
                           "password": "lab", "bng": "bng-1"}  # fmt: skip
    bng: dict[str, Any] = {"name": "bng-1", "host": "127.0.0.1", "username": "lab",
                           "password": "lab", "ip_pool": "100.64.0.0/24"}  # fmt: skip
    if olt_platform is not None:
        olt["platform"] = olt_platform
    if bng_platform is not None:
        bng["platform"] = bng_platform
    plan = {"name": "p100", "download_kbps": 100_000, "upload_kbps": 50_000,
            "policy_in": "PLAN-IN", "policy_out": "PLAN-OUT"}  # fmt: skip
    return {"olts": [olt], "bngs": [bng], "radius": {"secret": "s"}, "plans": [plan]}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_platform_picks_the_driver(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, _inventory("huawei_olt", "cisco_ios")))
    records: list[CommandRecord] = []
    olt: OltDriver = olt_driver(inv.olt("olt-1"), audit=records.append)
    bng: BngDriver = bng_driver(inv.bng("bng-1"), inv.walled_garden_policy)
    assert isinstance(olt, HuaweiOlt) and olt.audit == records.append
    assert isinstance(bng, CiscoBng) and bng.walled_garden_policy == "WALLED-GARDEN"


def test_the_default_platforms_have_drivers() -> None:
    inv = parse_inventory(_inventory())
    assert inv.olts[0].platform in OLT_DRIVERS
    assert inv.bngs[0].platform in BNG_DRIVERS


@pytest.mark.parametrize(
    ("data", "where", "kind"),
    [
        (_inventory(olt_platform="zte_olt"), "olts[0].platform", "OLT"),
        (_inventory(bng_platform="juniper_junos"), "bngs[0].platform", "BNG"),
        # A vendor's name on the wrong kind of device is as unknown as a made-up one.
        (_inventory(olt_platform="cisco_ios"), "olts[0].platform", "OLT"),
    ],
)
def test_an_unknown_platform_fails_at_load(
    tmp_path: Path, data: Any, where: str, kind: str
) -> None:
    with pytest.raises(InventoryError) as err:
        load_inventory(_write(tmp_path, data))
    message = str(err.value)
    assert where in message and f"unknown {kind} platform" in message, message
    assert "known: " in message, message


def test_models_refuse_an_unknown_platform() -> None:
    with pytest.raises(ValueError, match="unknown OLT platform"):
        Olt(name="o", host="h", username="u", password="p", bng="b", platform="nokia")
    with pytest.raises(ValueError, match="unknown BNG platform"):
        Bng(name="b", host="h", username="u", password="p", ip_pool="10.0.0.0/24",
            platform="nokia")  # fmt: skip
