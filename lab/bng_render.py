"""What the lab BNG prints for its show commands, line by line, in IOS-XE layouts.

Each layout follows real ASR1000 output and parses with the ntc-templates template
for the command. Renderers return lines (filters and the pager work on lines) and
touch each sub-interface once: 20,000 of them render in one pass and one join.
"""

from __future__ import annotations

import time
import zlib

from fiberflow.lab.bng_state import BngState, SubIf

VERSION = "16.12.5"
# Short names `show interfaces description` prints, longest type name first.
SHORT_NAMES = (
    ("TwentyFiveGigE", "Twe"),
    ("FortyGigabitEthernet", "Fo"),
    ("TenGigabitEthernet", "Te"),
    ("HundredGigE", "Hu"),
    ("GigabitEthernet", "Gi"),
    ("FastEthernet", "Fa"),
    ("Port-channel", "Po"),
    ("Ethernet", "Et"),
)


def render_subif(sub: SubIf) -> list[str]:
    """Running-config lines in IOS order (see the show_running-config_interface capture)."""
    lines = [f"interface {sub.name}"]
    if sub.description:
        lines.append(f" description {sub.description}")
    if sub.outer_vlan is not None:
        inner = f" second-dot1q {sub.inner_vlan}" if sub.inner_vlan is not None else ""
        lines.append(f" encapsulation dot1Q {sub.outer_vlan}{inner}")
    if sub.ip_address:
        lines.append(f" ip address {sub.ip_address} {sub.netmask}")
    else:
        lines.append(" no ip address")
    if sub.shutdown:
        lines.append(" shutdown")
    if sub.policy_in:
        lines.append(f" service-policy input {sub.policy_in}")
    if sub.policy_out:
        lines.append(f" service-policy output {sub.policy_out}")
    return lines


def render_uplink(state: BngState) -> list[str]:
    lines = [f"interface {state.uplink}"]
    if state.uplink_description:
        lines.append(f" description {state.uplink_description}")
    lines.append(" no ip address")
    if state.uplink_shutdown:
        lines.append(" shutdown")  # IOS prints it before `negotiation auto`
    lines.append(" negotiation auto")
    return lines


def with_header(body: list[str]) -> list[str]:
    """IOS counts the bytes of what follows the header line (each line and its newline)."""
    size = sum(len(line) + 1 for line in body)
    return ["Building configuration...", "", f"Current configuration : {size} bytes", *body]


def running_interface(state: BngState, name: str) -> list[str] | None:
    """`show running-config interface X`: one block, closed by `end` as IOS does."""
    with state.lock:
        if name == state.uplink:
            block = render_uplink(state)
        else:
            sub = state.subifs.get(name)
            if sub is None:
                return None
            block = render_subif(sub)
    return with_header(["!", *block, "end"])


def running_config(state: BngState) -> list[str]:
    changed = _stamp(state.changed)
    body = [
        "!",
        f"! Last configuration change at {changed}",
        "!",
        f"version {VERSION.rsplit('.', 1)[0]}",
        "service timestamps debug datetime msec",
        "service timestamps log datetime msec",
        "no platform punt-keepalive disable-kernel-core",
        "!",
        f"hostname {state.name}",
        "!",
        "boot-start-marker",
        "boot-end-marker",
        "!",
        "no aaa new-model",
        "!",
    ]
    with state.lock:
        body += render_uplink(state)
        body.append("!")
        for sub in state.in_order():
            body += render_subif(sub)
            body.append("!")
    body += [
        "ip forward-protocol nd",
        "no ip http server",
        "no ip http secure-server",
        "!",
        "line con 0",
        " stopbits 1",
        "line vty 0 4",
        " login local",
        " transport input ssh",
        "!",
        "end",
    ]
    return with_header(body)


def _status(state: BngState, sub: SubIf | None) -> tuple[str, str]:
    """(status, protocol) as `show ip interface brief` words them."""
    if sub is None:
        return "deleted", "down"
    if sub.shutdown:
        return "administratively down", "down"
    if state.uplink_shutdown:  # a sub-interface is down with its parent, not admin down
        return "down", "down"
    return "up", "up"


def ip_interface_brief(state: BngState) -> list[str]:
    def row(name: str, ip: str | None, status: tuple[str, str]) -> str:
        method = "manual" if ip else "unset"
        # Names longer than the column push the rest right, as on the device.
        return f"{name:<26} {ip or 'unassigned':<15} YES {method:<6} {status[0]:<21} {status[1]}"

    up = ("administratively down", "down") if state.uplink_shutdown else ("up", "up")
    lines = [
        "Interface                  IP-Address      OK? Method Status                Protocol",
        row(state.uplink, None, up),
    ]
    with state.lock:
        for name, sub in state.listed():
            lines.append(row(name, sub.ip_address if sub else None, _status(state, sub)))
    return lines


def short_name(name: str) -> str:
    for long, short in SHORT_NAMES:
        if name.startswith(long):
            return short + name[len(long) :]
    return name


def interfaces_description(state: BngState) -> list[str]:
    def row(name: str, status: tuple[str, str], description: str | None) -> str:
        # This table says "admin down" where the brief one says "administratively down".
        word = "admin down" if status[0].startswith("admin") else status[0]
        return f"{short_name(name):<30} {word:<14} {status[1]:<8} {description or ''}".rstrip()

    up = ("administratively down", "down") if state.uplink_shutdown else ("up", "up")
    lines = [
        "Interface                      Status         Protocol Description",
        row(state.uplink, up, state.uplink_description),
    ]
    with state.lock:
        for name, sub in state.listed():
            lines.append(row(name, _status(state, sub), sub.description if sub else None))
    return lines


def show_version(state: BngState) -> list[str]:
    up = int(time.time() - state.booted)
    serial = f"FXS{zlib.crc32(state.name.encode()) % 10**8:08d}"
    return [
        f"Cisco IOS XE Software, Version {_xe_version()}",
        "Cisco IOS Software [Gibraltar], ASR1000 Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), "
        f"Version {VERSION}, RELEASE SOFTWARE (fc3)",
        "Technical Support: http://www.cisco.com/techsupport",
        "Copyright (c) 1986-2021 by Cisco Systems, Inc.",
        "Compiled Fri 29-Jan-21 12:08 by mcpre",
        "",
        "",
        "Cisco IOS-XE software, Copyright (c) 2005-2021 by cisco Systems, Inc.",
        "All rights reserved.  Certain components of Cisco IOS-XE software are",
        'licensed under the GNU General Public License ("GPL") Version 2.0.  The',
        "software code licensed under GPL Version 2.0 is free software that comes",
        "with ABSOLUTELY NO WARRANTY.  You can redistribute and/or modify such",
        "GPL code under the terms of GPL Version 2.0.  For more details, see the",
        'documentation or "License Notice" file accompanying the IOS-XE software,',
        "or the applicable URL provided on the flyer accompanying the IOS-XE",
        "software.",
        "",
        "",
        "ROM: 16.9(4r)",
        "",
        f"{state.name} uptime is {_uptime(up)}",
        f"Uptime for this control processor is {_uptime(up)}",
        "System returned to ROM by Reload Command",
        f"System restarted at {_stamp(state.booted)}",
        'System image file is "bootflash:packages.conf"',
        "Last reload reason: Reload Command",
        "",
        "",
        "License Type: Smart License is permanent",
        "License Level: adventerprise",
        "Next reload license Level: adventerprise",
        "",
        "",
        "cisco ASR1002-HX (2KH) processor (revision 2KH) with 3765187K/6147K bytes of memory.",
        f"Processor board ID {serial}",
        "8 Gigabit Ethernet interfaces",
        "8 Ten Gigabit Ethernet interfaces",
        "32768K bytes of non-volatile configuration memory.",
        "16777216K bytes of physical memory.",
        "29401087K bytes of eUSB flash at bootflash:.",
        "",
        "Configuration register is 0x2102",
    ]


def _xe_version() -> str:
    # The first line pads the minor and patch numbers: 16.12.5 -> 16.12.05.
    major, minor, patch = VERSION.split(".")
    return f"{major}.{int(minor):02d}.{int(patch):02d}"


def _uptime(seconds: int) -> str:
    """IOS leaves out zero units but always says the minutes: "1 hour, 0 minutes"."""
    minutes, hours = seconds // 60 % 60, seconds // 3600 % 24
    days, weeks, years = seconds // 86400 % 7, seconds // 604800 % 52, seconds // 31449600
    parts = [(years, "year"), (weeks, "week"), (days, "day"), (hours, "hour")]
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return ", ".join([*words, f"{minutes} minute{'s' if minutes != 1 else ''}"])


def _stamp(epoch: float) -> str:
    """IOS clock format, e.g. "03:37:14 UTC Sun Jun 20 2021" (no zero-padded day)."""
    t = time.gmtime(epoch)
    return f"{time.strftime('%H:%M:%S UTC %a %b', t)} {t.tm_mday} {t.tm_year}"
