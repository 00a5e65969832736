"""``display ont autofind all``: the unregistered ONTs an OLT sees on its PON ports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fiberflow.devices.textfsm_parse import ParseError, parse_ntc

PLATFORM = "huawei_smartax"
# What the OLT prints when no port reports an unknown ONT (an answer, not a failure).
NO_AUTOFIND = "The automatically found ONTs do not exist"


@dataclass(frozen=True, slots=True)
class AutofindOnt:
    """One unregistered ONT in autofind."""

    fsp: str  # "F/S/P", no padding
    serial: str  # 16 upper-case hex digits
    vendor_id: str  # "HWTC"
    equipment_id: str  # the ONT model, e.g. "EG8145V5"
    found_at: datetime | None  # the OLT's own autofind time (its clock, its zone)


def _fsp(text: str) -> str:
    return "/".join(str(int(p)) for p in text.replace(" ", "").split("/"))


def _found_at(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None  # a device without a zone suffix, or a time it cannot tell


def parse_autofind(text: str) -> list[AutofindOnt]:
    """The ntc-templates ``huawei_smartax_display_ont_autofind`` rows as typed values;
    [] when the OLT reports none. ParseError for anything the template refuses."""
    if NO_AUTOFIND in text:
        return []
    rows = parse_ntc(PLATFORM, "display ont autofind all", text)
    found = []
    for r in rows:
        # "485754431A2B3C4D (HWTC-1A2B3C4D)": the hex form first, the vendor form after.
        serial = str(r["serial_number"]).split()[0].upper()
        if len(serial) != 16 or any(c not in "0123456789ABCDEF" for c in serial):
            raise ParseError(f"autofind: not a GPON serial: {r['serial_number']!r}")
        found.append(
            AutofindOnt(
                fsp=_fsp(str(r["fsp"])),
                serial=serial,
                vendor_id=str(r["vendor_id"]),
                equipment_id=str(r["ont_equipment_id"]),
                found_at=_found_at(str(r["ont_autofind_time"])),
            )
        )
    return found
