"""BNG router drivers (Cisco IOS-XE style over netmiko ``cisco_ios``)."""

from devices.bng.cisco import CiscoBng, ConfigRejected, SubscriberNotFound
from devices.bng.models import SubInterface
from devices.bng.protocol import BngDriver

__all__ = ["BngDriver", "CiscoBng", "ConfigRejected", "SubInterface", "SubscriberNotFound"]
