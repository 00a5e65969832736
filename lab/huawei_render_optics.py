"""Huawei MA5800 optical displays: ``display ont autofind`` and ``display ont optical-info``.

Layouts follow real device output (ntc-templates' huawei_smartax fixtures for autofind and
``optical-info P all``; the key/value list of ``optical-info P ID`` as an MA5800 prints it).
"""

from __future__ import annotations

from fiberflow.lab.huawei_render import serial_text
from fiberflow.lab.olt_plugs import Plug
from fiberflow.lab.ont_optics import Optics

AUTOFIND_RULE = "   " + "-" * 76
RULE = "  " + "-" * 77


def vendor_id(serial: str) -> str:
    """The vendor part of a GPON serial: four ASCII letters in its first 8 hex digits."""
    vendor = bytes.fromhex(serial[:8]).decode("ascii", errors="replace")
    return vendor if vendor.isalnum() else serial[:8]


def _mac(serial: str) -> str:
    tail = serial[-8:].upper()
    return f"E0A3-{tail[:4]}-{tail[4:]}"


def autofind(plugs: list[Plug]) -> str:
    lines = [AUTOFIND_RULE]
    for number, p in enumerate(plugs, start=1):
        pairs = [
            ("Number", str(number)),
            ("F/S/P", "/".join(map(str, p.fsp))),
            ("Ont SN", serial_text(p.serial)),
            ("Password", "0x" + "0" * 20),
            ("Loid", ""),
            ("Checkcode", ""),
            ("VendorID", vendor_id(p.serial)),
            ("Ont Version", "10C7.A"),
            ("Ont SoftwareVersion", "V5R020C00S115"),
            ("Ont EquipmentID", "EG8145V5"),
            ("Ont Customized Info", "COMMON"),
            ("Ont MAC", _mac(p.serial)),
            ("Ont Equipment SN", p.serial[-12:]),
            # The device prints its own time zone; the lab runs on UTC.
            ("Ont autofind time", p.found_at.strftime("%Y-%m-%d %H:%M:%S+00:00")),
            ("Multi channel", "-"),
        ]
        # Empty values end at the colon ("Loid                :"), as on the device.
        lines += [f"   {k:<20}:{' ' + v if v else ''}" for k, v in pairs]
        lines.append(AUTOFIND_RULE)
    return "\n".join(lines)


def optical_detail(o: Optics) -> str:
    """``display ont optical-info P ID`` of an online ONT."""
    pairs = [
        ("ONU NNI port ID", "0"),
        ("Module type", "GPON"),
        ("Module sub-type", "CLASS B+"),
        ("Used type", "ONU"),
        ("Encapsulation Type", "BOSA ON BOARD"),
        ("Optical power precision(dBm)", "3.0"),
        ("Vendor name", "HUAWEI          "),
        ("Vendor rev", "-"),
        ("Vendor PN", "HW-BOB-0007     "),
        ("Vendor SN", "2035WJ830108S   "),
        ("Date Code", "20-08-14"),
        ("Rx optical power(dBm)", f"{o.rx_dbm:.2f}"),
        ("Rx power current warning threshold(dBm)", "[-,-]"),
        ("Rx power current alarm threshold(dBm)", "[-29.0,-7.0]"),
        ("Tx optical power(dBm)", f"{o.tx_dbm:.2f}"),
        ("Tx power current warning threshold(dBm)", "[-,-]"),
        ("Tx power current alarm threshold(dBm)", "[0.0,5.0]"),
        ("Laser bias current(mA)", str(o.bias_ma)),
        ("Tx bias current warning threshold(mA)", "[-,-]"),
        ("Tx bias current alarm threshold(mA)", "[2.000,100.000]"),
        ("Temperature(C)", str(o.temperature_c)),
        ("Temperature warning threshold(C)", "[-,-]"),
        ("Temperature alarm threshold(C)", "[-61,95]"),
        ("Voltage(V)", f"{o.voltage_v:.3f}"),
        ("Supply voltage warning threshold(V)", "[-,-]"),
        ("Supply voltage alarm threshold(V)", "[3.000,3.600]"),
        ("OLT Rx ONT optical power(dBm)", f"{o.olt_rx_dbm:.2f}"),
        ("CATV Rx optical power(dBm)", "-"),
        ("CATV Rx power alarm threshold(dBm)", "[-,-]"),
    ]
    return "\n".join([RULE, *(f"  {k:<39}: {v}" for k, v in pairs), RULE])


def optical_port(rows: list[tuple[int, Optics]]) -> str:
    """``display ont optical-info P all``: one line per online ONT of the port."""
    lines = [
        RULE + " ",
        "  ONT  Rx power  Tx power  OLT Rx ONT  Temperature  Voltage  Current  Distance  ",
        "  ID   (dBm)     (dBm)     power(dBm)  (C)          (V)      (mA)     (m)       ",
        RULE + " ",
    ]
    for ont_id, o in rows:
        lines.append(
            f"  {ont_id:>3}  {o.rx_dbm:<9.2f} {o.tx_dbm:<9.2f} {o.olt_rx_dbm:<11.2f} "
            f"{o.temperature_c:<12} {o.voltage_v:<8.3f} {o.bias_ma:<8} {o.distance_m:<10}"
        )
    lines.append(RULE)
    return "\n".join(lines)
