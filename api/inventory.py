"""The inventory as the API sees it: loaded from the configured file, reloaded on change."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, status

from fiberflow.api.deps import SettingsDep
from fiberflow.devices.inventory import Inventory, InventoryError, load_inventory

_cache: dict[str, tuple[float, Inventory]] = {}


def current_inventory(settings: SettingsDep) -> Inventory:
    path = settings.effective_inventory()
    if path is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no inventory is configured yet")
    key = str(path)
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "inventory file missing") from None
    cached = _cache.get(key)
    if cached is None or cached[0] != mtime:
        try:
            _cache[key] = (mtime, load_inventory(path))
        except InventoryError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return _cache[key][1]


InventoryDep = Annotated[Inventory, Depends(current_inventory)]
