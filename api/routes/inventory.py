"""``GET /api/v1/inventory``: devices and plans, never a credential."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from fiberflow.api.deps import OperatorDep
from fiberflow.api.inventory import InventoryDep
from fiberflow.api.schemas import BngOut, ErrorBody, InventoryOut, OltOut, PlanOut

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"])

# Named fields only (never a model dump of a device): credentials cannot slip through.
_DEVICE_FIELDS = ("name", "platform", "host", "port", "max_sessions")


def _device(device: Any) -> dict[str, Any]:
    return {f: getattr(device, f) for f in _DEVICE_FIELDS}


@router.get("", response_model=InventoryOut, summary="OLTs, BNGs and plans (no secrets)",
            responses={code: {"model": ErrorBody} for code in (401, 403, 503)})  # fmt: skip
def read_inventory(_principal: OperatorDep, inventory: InventoryDep) -> InventoryOut:
    return InventoryOut(
        olts=[
            OltOut(**_device(o), bng=o.bng, boards=o.boards, vlan_range=(o.vlan_first, o.vlan_last))
            for o in inventory.olts
        ],
        bngs=[BngOut(**_device(b), ip_pool=b.ip_pool) for b in inventory.bngs],
        plans=[
            PlanOut(name=p.name, download_kbps=p.download_kbps, upload_kbps=p.upload_kbps)
            for p in inventory.plans
        ],
    )
