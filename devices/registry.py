"""Which driver speaks each inventory ``platform``: the one place a vendor is chosen.

A new OLT vendor is one driver module in ``devices/olt/`` and one line in
``OLT_DRIVERS``; a new BNG vendor the same in ``devices/bng/`` and ``BNG_DRIVERS``.
The inventory refuses, at load, a platform no line names. Callers get the Protocol
(``OltDriver``, ``BngDriver``), never a vendor's class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from fiberflow.devices.base import AuditSink, no_audit
from fiberflow.devices.bng.cisco import CiscoBng
from fiberflow.devices.bng.protocol import BngDriver
from fiberflow.devices.inventory import Bng, Olt
from fiberflow.devices.olt.huawei import HuaweiOlt
from fiberflow.devices.olt.protocol import OltDriver


class OltFactory(Protocol):
    """How an OLT driver is built: its inventory entry and where its commands are audited."""

    def __call__(self, olt: Olt, audit: AuditSink = ...) -> OltDriver: ...


class BngFactory(Protocol):
    """How a BNG driver is built; the walled-garden policy is inventory-wide."""

    def __call__(
        self, bng: Bng, walled_garden_policy: str = ..., audit: AuditSink = ...
    ) -> BngDriver: ...


OLT_DRIVERS: Final[Mapping[str, OltFactory]] = {
    "huawei_olt": HuaweiOlt,
}
BNG_DRIVERS: Final[Mapping[str, BngFactory]] = {
    "cisco_ios": CiscoBng,
}


def olt_driver(olt: Olt, audit: AuditSink = no_audit) -> OltDriver:
    return OLT_DRIVERS[olt.platform](olt, audit=audit)


def bng_driver(bng: Bng, walled_garden_policy: str, audit: AuditSink = no_audit) -> BngDriver:
    return BNG_DRIVERS[bng.platform](bng, walled_garden_policy, audit=audit)
