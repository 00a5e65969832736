"""Huawei SmartAX output -> typed values, via ntc-templates (own templates for ``ont delete``
and the single-ONT ``display ont optical-info``, which ntc-templates does not cover)."""

from __future__ import annotations

import re
from pathlib import Path

from fiberflow.devices.olt.models import ControlFlag, OntInfo, OpticalInfo, ServicePort
from fiberflow.devices.textfsm_parse import NTC_TEMPLATES, ParseError, parse_file, parse_ntc

PLATFORM = "huawei_smartax"
# Own templates sit beside this module so the "*.textfsm" package-data glob ships them.
OWN_TEMPLATES = Path(__file__).parent
# `display service-port port F/S/P ont ID` prints the same table as `display service-port
# all`; ntc-templates indexes only the latter command, so use its template file directly.
SERVICE_PORT_TEMPLATE = NTC_TEMPLATES / "huawei_smartax_display_service-port_all.textfsm"


def _fsp(text: str) -> str:
    # Huawei pads slots in some tables: "0/ 1/0", "0/1 /0".
    return "/".join(str(int(p)) for p in text.replace(" ", "").split("/"))


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _control(flag: str) -> ControlFlag:
    # Summary tables say "deactive", the detail view "deactivated".
    return "active" if flag == "active" else "deactivated"


def parse_ont_detail(text: str) -> OntInfo | None:
    """``display ont info F S P ID`` / ``display ont info by-sn SN``."""
    rows = parse_ntc(PLATFORM, "display ont info 0 0 0 0", text)
    if not rows or not rows[0].get("ont_id"):
        return None
    r = {k: str(v) for k, v in rows[0].items() if not isinstance(v, list)}
    # "485754431A2B3C4D (HWTC-1A2B3C4D)": the hex form first, the vendor form after.
    serial = r["serial_number"].split()[0]
    return OntInfo(
        fsp=_fsp(r["fsp"]),
        ont_id=int(r["ont_id"]),
        serial=serial,
        control_flag=_control(r["control_flag"]),
        run_state=r["run_state"],
        config_state=r["config_state"],
        match_state=r["match_state"],
        description=r["description"],
        line_profile_id=_int_or_none(r.get("line_profile_id")),
        service_profile_id=_int_or_none(r.get("service_profile_id")),
    )


def parse_ont_summary(text: str) -> list[OntInfo]:
    """``display ont info F S P all``: one row per ONT with its description."""
    rows = parse_ntc(PLATFORM, "display ont info 0 0 0 all", text)
    return [
        OntInfo(
            fsp=_fsp(str(r["fsp"])),
            ont_id=int(str(r["ont_id"])),
            serial=str(r["serial_number"]),
            control_flag=_control(str(r["control_flag"])),
            run_state=str(r["run_state"]) or "offline",
            config_state=str(r["config_state"]),
            match_state=str(r["match_state"]),
            description=str(r.get("description", "")),
        )
        for r in rows
    ]


def parse_service_ports(text: str) -> list[ServicePort]:
    rows = parse_file(SERVICE_PORT_TEMPLATE, text)
    return [
        ServicePort(
            index=int(str(r["index"])),
            vlan=int(str(r["vlan_id"])),
            fsp=_fsp(str(r["fsp"])),
            ont_id=int(str(r["ont_id"])),
            gem_port=int(str(r["gem_index"])),
            user_vlan=_int_or_none(r["vlan_access"]),
            state=str(r["state"]),
        )
        for r in rows
    ]


def parse_ont_add(text: str) -> tuple[int, int | None]:
    """``ont add`` -> (success count, ONT id the OLT reports)."""
    # The ntc template stops at a Failure line after "success: 0"; parse the head only.
    head = "\n".join(line for line in text.splitlines() if not re.match(r"\s*Failure:", line))
    rows = parse_ntc(PLATFORM, "ont add", head)
    if not rows:
        m = re.search(r"success:\s*(\d+)", text)
        if not m:
            raise ParseError(f"unrecognised ont add output: {text[:200]!r}")
        return int(m.group(1)), None
    return int(str(rows[0]["success"])), _int_or_none(rows[0]["ont_id"])


def parse_ont_delete(text: str) -> int:
    """``ont delete P ID`` -> success count (own template: ntc has none)."""
    rows = parse_file(OWN_TEMPLATES / "huawei_smartax_ont_delete.textfsm", text)
    if not rows:
        raise ParseError(f"unrecognised ont delete output: {text[:200]!r}")
    return int(str(rows[0]["success"]))


def _float_or_none(value: object) -> float | None:
    # A reading the ONT does not report prints as "-".
    return float(value) if isinstance(value, str) and value not in ("", "-") else None


def parse_optical_info(text: str) -> OpticalInfo:
    """``display ont optical-info P ID`` -> the ONT's readings (own template)."""
    rows = parse_file(OWN_TEMPLATES / "huawei_smartax_ont_optical_info.textfsm", text)
    if not rows or not rows[0].get("rx_power"):
        raise ParseError(f"unrecognised ont optical-info output: {text[:200]!r}")
    r = rows[0]
    temperature = _float_or_none(r["temperature"])
    return OpticalInfo(
        rx_power_dbm=_float_or_none(r["rx_power"]),
        tx_power_dbm=_float_or_none(r["tx_power"]),
        olt_rx_power_dbm=_float_or_none(r["olt_rx_power"]),
        temperature_c=None if temperature is None else int(temperature),
        voltage_v=_float_or_none(r["voltage"]),
        bias_current_ma=_float_or_none(r["bias_current"]),
    )
