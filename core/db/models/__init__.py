"""SQLAlchemy 2 models. Import from here; Alembic reads ``Base.metadata``."""

from fiberflow.core.db.models.base import Base, utcnow
from fiberflow.core.db.models.bulk import BulkItem, BulkRun
from fiberflow.core.db.models.discovery import OntSighting
from fiberflow.core.db.models.drift import DriftCheck
from fiberflow.core.db.models.ipam import IpAllocation, IpPool, VlanAllocation
from fiberflow.core.db.models.logs import DeviceCommandAudit, EventLog
from fiberflow.core.db.models.radius import (
    RadCheck,
    RadGroupCheck,
    RadGroupReply,
    RadReply,
    RadUserGroup,
)
from fiberflow.core.db.models.service import (
    TRANSITIONAL,
    InvalidTransition,
    Operation,
    ServiceInstance,
    ServiceStatus,
)

__all__ = [
    "TRANSITIONAL",
    "Base",
    "BulkItem",
    "BulkRun",
    "DeviceCommandAudit",
    "DriftCheck",
    "EventLog",
    "InvalidTransition",
    "IpAllocation",
    "IpPool",
    "OntSighting",
    "Operation",
    "RadCheck",
    "RadGroupCheck",
    "RadGroupReply",
    "RadReply",
    "RadUserGroup",
    "ServiceInstance",
    "ServiceStatus",
    "VlanAllocation",
    "utcnow",
]
