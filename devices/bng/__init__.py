"""BNG router drivers (Cisco IOS-XE style over netmiko ``cisco_ios``)."""

from fiberflow.devices.bng.cisco import CiscoBng, ConfigRejected, SubscriberNotFound
from fiberflow.devices.bng.models import SubInterface
from fiberflow.devices.bng.protocol import BngDriver

__all__ = ["BngDriver", "CiscoBng", "ConfigRejected", "SubInterface", "SubscriberNotFound"]
