"""Huawei MA5600T/MA5800 ONT and service-port tables, laid out as in the real captures
in tests/devices/captures/huawei_smartax."""

from __future__ import annotations

from fiberflow.lab.olt_state import OntView, ServicePort
from fiberflow.lab.ont_optics import optics

RULE = "  " + "-" * 77
WIDE_RULE = "  " + "-" * 78


def serial_text(serial: str) -> str:
    """``485754431A2B3C4D`` -> ``485754431A2B3C4D (HWTC-1A2B3C4D)``: vendor id is hex ASCII."""
    vendor = bytes.fromhex(serial[:8]).decode("ascii", errors="replace")
    return f"{serial} ({vendor}-{serial[8:]})"


def fsp_spaced(frame: int, slot: int, port: int) -> str:
    # The port summary table pads the slot: "0/ 1/0" (see display_ont_info_fsp capture).
    return f"{frame}/{slot:>2}/{port}"


def ont_detail(v: OntView) -> str:
    f, s, p, ont_id = v.key
    o = v.ont
    if not o.active:
        run, config, match = "offline", "initial", "initial"
    elif v.online:
        run, config, match = "online", "normal", "match"
    else:
        run, config, match = "offline", "initial", "initial"
    dist = str(optics(o.serial, 0.0).distance_m) if v.online else "-"
    pairs = [
        ("F/S/P", f"{f}/{s}/{p}"),
        ("ONT-ID", str(ont_id)),
        ("Control flag", "active" if o.active else "deactivated"),
        ("Run state", run),
        ("Config state", config),
        ("Match state", match),
        ("DBA type", "SR"),
        ("ONT distance(m)", dist),
        ("ONT last distance(m)", dist),
        ("ONT battery state", "not support"),
        ("Memory occupation", "23%" if v.online else "-"),
        ("CPU occupation", "1%" if v.online else "-"),
        ("Temperature", "45(C)" if v.online else "-"),
        ("Authentic type", "SN-auth"),
        ("SN", serial_text(o.serial)),
        ("Management mode", "OMCI"),
        ("Software work mode", "normal"),
        ("Isolation state", "normal"),
        ("Description", o.description),
        ("Last down cause", "-"),
        ("Last up time", "-"),
        ("Last down time", "-"),
        ("Last dying gasp time", "-"),
        ("ONT online duration", "-"),
        ("Type C support", "Not support"),
        ("Interoperability-mode", "ITU-T"),
        ("Power reduction status", "-"),
        ("FEC upstream state", "use-profile-config"),
        ("VS-ID", "0"),
        ("VS name", "admin-vs"),
        ("Global ONT-ID", str(ont_id)),
    ]
    lines = [RULE, *(f"  {k:<24}: {val}" for k, val in pairs), RULE]
    lines += ["  VoIP configure method   : Default", RULE]
    lines += [
        f"  Line profile ID      : {o.line_profile_id}",
        f"  Line profile name    : ftth_{o.line_profile_id}",
        RULE,
        "  FEC upstream switch :Disable ",
        "  OMCC encrypt switch :On",
        "  Qos mode            :PQ",
        "  Mapping mode        :VLAN",
        "  TR069 management    :Disable",
        WIDE_RULE,
        "  Notes: * indicates Discrete TCONT(TCONT Unbound)",
        WIDE_RULE,
        "  <T-CONT   0>          DBA Profile-ID:1",
        f"  <T-CONT   1>          DBA Profile-ID:{o.line_profile_id}",
        "   <Gem Index 1>",
        "   " + "-" * 68,
        "   |Serv-Type:ETH |Encrypt:on  |Cascade:off |GEM-CAR:-            |",
        "   |Upstream-priority-queue:0  |Downstream-priority-queue:-       |",
        "   " + "-" * 68,
        WIDE_RULE,
        RULE,
        f"  Service profile ID   : {o.service_profile_id}",
        f"  Service profile name : ftth_{o.service_profile_id}",
        RULE,
        "  Port-type     Port-number     Max-adaptive-number",
        RULE,
        "  POTS          adaptive        32",
        "  ETH           adaptive        8",
        "  VDSL          0               -",
        "  TDM           0               -    ",
        "  MOCA          0               -",
        "  CATV          adaptive        8",
        RULE,
        "  Alarm policy profile ID   : 0",
        "  Alarm policy profile name : alarm-policy_0",
        RULE,
    ]
    return "\n".join(lines)


def port_summary(frame: int, slot: int, port: int, views: list[OntView]) -> str:
    """``display ont info F S P all`` (display_ont_info_fsp capture layout)."""
    fsp = fsp_spaced(frame, slot, port)
    lines = [
        RULE,
        "  F/S/P   ONT         SN         Control     Run      Config   Match    Protect",
        "          ID                     flag        state    state    state    side ",
        RULE,
    ]
    for v in views:
        o = v.ont
        run, config, match = (
            ("online", "normal", "match") if v.online else ("offline", "initial", "initial")
        )
        flag = "active" if o.active else "deactive"
        lines.append(
            f"  {fsp} {v.key[3]:>4}  {o.serial}  {flag:<11} {run:<8} {config:<8} {match:<8} no "
        )
    lines += [RULE, "  F/S/P       ONT  Description  ", "              ID  ", RULE]
    lines += [f"  {fsp}    {v.key[3]:>4}   {v.ont.description}" for v in views]
    online = sum(1 for v in views if v.online)
    lines += [
        RULE,
        f"  In port {fsp} , the total of ONTs are: {len(views)}, online: {online}",
        RULE,
    ]
    return "\n".join(lines)


def service_ports(rows: list[tuple[ServicePort, bool]]) -> str:
    """``display service-port ...`` (display_service-port_all capture layout)."""
    lines = [
        "Switch-Oriented Flow List",
        RULE,
        "   INDEX VLAN VLAN     PORT F/ S/ P VPI  VCI   FLOW  FLOW       RX   TX   STATE",
        "         ID   ATTR     TYPE                    TYPE  PARA",
        RULE,
    ]
    for sp, up in rows:
        fsp = f"{sp.frame}/{sp.slot:<2}/{sp.port}"
        state = "up" if up else "down"
        lines.append(
            f"  {sp.index:>6} {sp.vlan:<4} common   gpon {fsp:<7} {sp.ont_id:<4} {sp.gem_port:<5} "
            f"vlan  {sp.user_vlan:<10} -    -    {state:<5}"
        )
    ups = sum(1 for _, up in rows if up)
    lines += [
        RULE,
        f"   Total : {len(rows)}  (Up/Down :    {ups}/{len(rows) - ups})",
        "   Note : F--Frame, S--Slot, P--Port,",
        "          VPI indicates ONT ID for PON, VCI indicates GEM index for GPON,",
        "          v/e--vlan/encap, pritag--priority-tagged,",
        "          ppp--pppoe, ip--ipoe, ip4--ipv4oe, ip6--ipv6oe, vxl--vxlan.",
    ]
    return "\n".join(lines)
