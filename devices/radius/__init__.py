"""RADIUS driver: FreeRADIUS SQL rows (sql.RadiusStore) + pyrad packets (client.RadiusClient)."""

from fiberflow.devices.radius.client import RadiusClient, nas_target, radius_secret
from fiberflow.devices.radius.driver import Radius
from fiberflow.devices.radius.protocol import RadiusDriver, RadiusRows, RadiusWire
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.devices.radius.types import (
    SUSPENDED_GROUP,
    AuthResult,
    AuthStatus,
    CoaResult,
    CoaStatus,
    NasTarget,
    RadiusSubscriber,
    RadiusTimeout,
    ReplyAttribute,
)

__all__ = [
    "SUSPENDED_GROUP",
    "AuthResult",
    "AuthStatus",
    "CoaResult",
    "CoaStatus",
    "NasTarget",
    "Radius",
    "RadiusClient",
    "RadiusDriver",
    "RadiusRows",
    "RadiusStore",
    "RadiusSubscriber",
    "RadiusTimeout",
    "RadiusWire",
    "ReplyAttribute",
    "nas_target",
    "radius_secret",
]
