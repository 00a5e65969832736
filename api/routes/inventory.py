"""``GET /api/v1/inventory``: devices and plans, never a credential."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import OperatorDep
from api.inventory import InventoryDep

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"])

_DEVICE_FIELDS = ("name", "platform", "host", "port", "max_sessions")


@router.get("", summary="OLTs, BNGs and plans (no secrets)")
def read_inventory(_principal: OperatorDep, inventory: InventoryDep) -> dict[str, Any]:
    return {
        "olts": [
            {
                **{f: getattr(o, f) for f in _DEVICE_FIELDS},
                "bng": o.bng,
                "boards": o.boards,
                "vlan_range": [o.vlan_first, o.vlan_last],
            }  # fmt: skip
            for o in inventory.olts
        ],
        "bngs": [
            {**{f: getattr(b, f) for f in _DEVICE_FIELDS}, "ip_pool": b.ip_pool}
            for b in inventory.bngs
        ],
        "plans": [
            p.model_dump(include={"name", "download_kbps", "upload_kbps"}) for p in inventory.plans
        ],
    }
