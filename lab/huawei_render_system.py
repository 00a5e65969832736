"""Huawei MA5800 chassis displays: ``display version`` and ``display board F``.

Layouts follow ntc-templates' huawei_smartax fixtures (real device output).
"""

from __future__ import annotations

PRODUCT = "MA5800-X7"
VERSION = "MA5800V100R019C10"
PATCH = "SPC200"
# An MA5800-X7 shelf: service boards in slots 1-7, control boards in 8 and 9, power
# boards in 10 and 11 (the lab puts its GPON boards where `boards` says).
CONTROL_SLOTS = (8, 9)
POWER_SLOTS = (10, 11)
LAST_SLOT = 11
GPON_BOARD = "H901GPHF"  # 16-port GPON class C+
CONTROL_BOARD = "H901MPLA"
POWER_BOARD = "H901PILA"
BOARD_RULE = "  " + "-" * 73
AREA_RULE = "  " + "-" * 50


def version(uptime_s: float) -> str:
    up = int(uptime_s)
    days, rest = divmod(up, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    area = [
        "  Current Program Area : Area A ",
        "  Current Data Area : Area A",
        " ",
        f"  Program Area A Version : {VERSION} ",
        f"  Program Area B Version : {VERSION}",
        " ",
        f"  Data Area A Version : {VERSION} ",
        f"  Data Area B Version : {VERSION} ",
    ]
    lines = [
        "",
        f"  VERSION : {VERSION}",
        f"  PATCH   : {PATCH}",
        f"  PRODUCT : {PRODUCT}",
        " ",
        "  Active Mainboard Running Area Information: ",
        AREA_RULE,
        *area,
        AREA_RULE,
        " ",
        "  Standby Mainboard Running Area Information: ",
        AREA_RULE,
        *area,
        AREA_RULE,
        " ",
        f"  Uptime is {days} day(s), {hours} hour(s), {minutes} minute(s), {seconds} second(s)",
    ]
    return "\n".join(lines)


def board(gpon_slots: set[int]) -> str:
    """``display board 0``: every slot of the shelf, empty ones included."""
    lines = [
        BOARD_RULE,
        "  SlotID  BoardName  Status          SubType0 SubType1    Online/Offline",
        BOARD_RULE,
    ]
    for slot in range(LAST_SLOT + 1):
        if slot in gpon_slots:
            row = (GPON_BOARD, "Normal", "")
        elif slot in CONTROL_SLOTS:
            status = "Active_normal" if slot == CONTROL_SLOTS[0] else "Standby_normal"
            row = (CONTROL_BOARD, status, "CPCF")
        elif slot in POWER_SLOTS:
            row = (POWER_BOARD, "Normal", "")
        else:
            # An empty slot is its number and padding, as the device prints it.
            lines.append(f"  {slot:<6}")
            continue
        name, status, sub0 = row
        lines.append(f"  {slot:<8}{name:<11}{status:<16}{sub0:<9}{'':<12}")
    lines.append(BOARD_RULE)
    return "\n".join(lines)
