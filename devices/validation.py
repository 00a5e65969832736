"""Strict patterns for every value that ends up in a CLI line or a RADIUS attribute.

Drivers call these before opening any connection: a newline, ``;``, a quote or an
out-of-range number never reaches a device. Each check raises InvalidInput naming the
field.
"""

from __future__ import annotations

import ipaddress
import re

from fiberflow.devices.base import InvalidInput

SERIAL = re.compile(r"[0-9A-F]{16}")
FSP = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{1,3})")
DESCRIPTION = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
GROUP = re.compile(r"[A-Za-z0-9._-]{1,64}")
POLICY = re.compile(r"[A-Za-z0-9_.-]{1,40}")
INTERFACE = re.compile(r"[A-Za-z][A-Za-z-]*[0-9]+(/[0-9]+)*(\.[0-9]{1,9})?")
PASSWORD = re.compile(r"[!-~]{1,128}")  # printable ASCII, no space/control characters


def _check(field: str, value: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInput(field, value, f"must match {pattern.pattern}")
    return value


def _int(field: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(field, value, f"must be an integer {lo}-{hi}")
    return value


def serial(value: object) -> str:
    """GPON serial: 16 upper-case hex digits (vendor id in hex + 8 digits)."""
    return _check("ont_serial", value, SERIAL)


def fsp(value: object) -> tuple[int, int, int]:
    """``F/S/P`` -> (frame, slot, port)."""
    m = FSP.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise InvalidInput("pon_port", value, "must be FRAME/SLOT/PORT, e.g. 0/1/3")
    frame, slot, port = (int(g) for g in m.groups())
    _int("pon_port frame", frame, 0, 15)
    _int("pon_port slot", slot, 0, 31)
    _int("pon_port port", port, 0, 127)
    return frame, slot, port


def ont_id(value: object) -> int:
    return _int("ont_id", value, 0, 127)


def vlan(value: object) -> int:
    return _int("vlan", value, 2, 4094)


def gem_port(value: object) -> int:
    return _int("gem_port", value, 0, 1023)


def profile_id(field: str, value: object) -> int:
    return _int(field, value, 0, 8192)


def service_port_index(value: object) -> int:
    return _int("service_port", value, 0, 65535)


def description(value: object) -> str:
    return _check("description", value, DESCRIPTION)


def username(value: object) -> str:
    return _check("username", value, USERNAME)


def group(value: object) -> str:
    return _check("group", value, GROUP)


def policy(value: object) -> str:
    return _check("policy", value, POLICY)


def interface(value: object) -> str:
    return _check("interface", value, INTERFACE)


def password(value: object) -> str:
    return _check("password", value, PASSWORD)


def ipv4(field: str, value: object) -> str:
    try:
        return str(ipaddress.IPv4Address(value))  # type: ignore[arg-type,unused-ignore]
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise InvalidInput(field, value, "must be an IPv4 address") from None


def ipv4_mask(value: object) -> str:
    try:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{value}").netmask)
    except (ValueError, TypeError):
        raise InvalidInput("netmask", value, "must be an IPv4 netmask") from None


# RADIUS attribute names as in the dictionary, and the values fiberflow puts in reply /
# CoA attributes (Cisco-AVPair "ip:sub-qos-policy-in=PLAN-100M-IN", Cisco-Account-Info
# "APLAN-100M"): no spaces, quotes, ';' or control characters.
RADIUS_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")
RADIUS_VALUE = re.compile(r"[A-Za-z0-9._:=@/+-]{1,253}")


def radius_attribute(value: object) -> str:
    return _check("radius attribute", value, RADIUS_ATTRIBUTE)


def radius_value(field: str, value: object) -> str:
    return _check(field, value, RADIUS_VALUE)


# A subscriber's RADIUS password. Narrower than PASSWORD: FreeRADIUS's rlm_sql treats a
# radcheck value wrapped in quotes specially (a back-quoted one is xlat-expanded), so no
# quotes, backquotes, backslashes, ';' or spaces.
RADIUS_PASSWORD = re.compile(r"[A-Za-z0-9!#$%&()*+,./:<=>?@\[\]^_{|}~-]{1,128}")


def radius_password(value: object) -> str:
    if not isinstance(value, str) or not RADIUS_PASSWORD.fullmatch(value):
        raise InvalidInput("password", "<redacted>", f"must match {RADIUS_PASSWORD.pattern}")
    return value


def radius_secret(value: object) -> str:
    """A RADIUS shared secret: printable ASCII, 1-128 characters. Never echoed back."""
    if not isinstance(value, str) or not PASSWORD.fullmatch(value):
        raise InvalidInput("secret", "<redacted>", "must be 1-128 printable ASCII characters")
    return value
