"""OLT drivers (Huawei SmartAX GPON over netmiko ``huawei_olt``)."""

from fiberflow.devices.olt.errors import (
    OltCommandFailed,
    OntIdInUse,
    OntNotFound,
    OntSerialExists,
    ServicePortIndexConflict,
)
from fiberflow.devices.olt.huawei import HuaweiOlt
from fiberflow.devices.olt.models import OntInfo, OpticalInfo, ServicePort
from fiberflow.devices.olt.protocol import OltDriver

__all__ = [
    "HuaweiOlt",
    "OltCommandFailed",
    "OltDriver",
    "OntIdInUse",
    "OntInfo",
    "OntNotFound",
    "OntSerialExists",
    "OpticalInfo",
    "ServicePort",
    "ServicePortIndexConflict",
]
