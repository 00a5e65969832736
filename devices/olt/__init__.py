"""OLT drivers (Huawei SmartAX GPON over netmiko ``huawei_olt``)."""

from devices.olt.errors import (
    OltCommandFailed,
    OntIdInUse,
    OntNotFound,
    OntSerialExists,
    ServicePortIndexConflict,
)
from devices.olt.huawei import HuaweiOlt
from devices.olt.models import OntInfo, ServicePort
from devices.olt.protocol import OltDriver

__all__ = [
    "HuaweiOlt",
    "OltCommandFailed",
    "OltDriver",
    "OntIdInUse",
    "OntInfo",
    "OntNotFound",
    "OntSerialExists",
    "ServicePort",
    "ServicePortIndexConflict",
]
