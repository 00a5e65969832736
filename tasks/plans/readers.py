"""Drivers for a dry run: unaudited (a dry run writes no audit row), each session held
in the device's slot like any other; and the Change of a driver's Result."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fiberflow.devices.base import Result
from fiberflow.devices.bng.protocol import BngDriver
from fiberflow.devices.changes import RADIUS, Change
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.devices.radius.protocol import RadiusRows
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.devices.registry import bng_driver, olt_driver
from fiberflow.tasks import devices
from fiberflow.tasks.runtime import runtime

T = TypeVar("T")


def olt(name: str) -> OltDriver:
    return olt_driver(runtime().inventory.olt(name))


def bng(name: str) -> BngDriver:
    inv = runtime().inventory
    return bng_driver(inv.bng(name), inv.walled_garden_policy)


def radius() -> RadiusRows:
    return RadiusStore(runtime().sessions)


def on(device: str, call: Callable[[], T]) -> T:
    """One driver call (one session) in the device's slot."""
    with devices.device_slot(device):
        return call()


def cli(device: str, result: Result) -> Change:
    return Change(device, "cli", result.lines)


def rows(result: Result) -> Change:
    return Change(RADIUS, "rows", result.lines)
