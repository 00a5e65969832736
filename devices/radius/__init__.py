"""RADIUS driver: FreeRADIUS SQL rows (sql.RadiusStore) + pyrad packets (client.RadiusClient)."""

from devices.radius.client import RadiusClient, nas_target, radius_secret
from devices.radius.driver import Radius
from devices.radius.protocol import RadiusDriver, RadiusRows, RadiusWire
from devices.radius.sql import RadiusStore
from devices.radius.types import (
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
