"""The inventory of the device lab: OLTs, BNGs, the lab RADIUS server, three plans.

The default lab is two OLTs (``olt-1``, ``olt-2``) on one BNG (``bng-1``). A larger lab
(``olt_count`` > 2) adds ``olt-3``.. each on a BNG of its own (``olt-3`` on ``bng-2``, ...):
VLANs are scoped per BNG, so one more BNG is what adds VLAN space (``capacity``).

``build_inventory`` fills in the ports the lab actually bound; ``write_inventory`` writes
it as YAML that ``devices.inventory.load_inventory`` reads back to an equal Inventory.
The lab credentials (user ``lab``, password ``lab``, RADIUS secrets ``lab``) are written
literally: a lab, not a secret.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from fiberflow.devices.inventory import Bng, Inventory, Olt, Plan, RadiusServer

LAB_USER = "lab"
LAB_PASSWORD = "lab"
LAB_SECRET = "lab"
OLT_NAMES = ("olt-1", "olt-2")  # the default lab
BNG_NAME = "bng-1"
DEFAULT_OLTS = len(OLT_NAMES)
# bng-k's pool is 100.(63+k).0.0/16: 32 OLTs use 31 of the 64 /16s of 100.64.0.0/10.
MAX_OLTS = 32
WALLED_GARDEN = "WALLED-GARDEN"
IP_POOL = "100.64.0.0/16"
IP_GATEWAY = "100.64.0.1"
# olt-1 and olt-2 hang off bng-1; VLANs are scoped per BNG, so they share one range.
VLAN_FIRST, VLAN_LAST = 100, 3999
BOARDS = {"0/1": 16, "0/2": 16}
ONTS_PER_PORT = 128  # GPON ONT ids 0-127
# Concurrent CLI (SSH/Telnet) sessions a device takes: its VTY lines. The inventory
# states them and the lab's SSH servers enforce them (lab/ssh_server.py refuses one
# more), so a run that exceeds them fails in the lab as it would on the device.
# Sources (docs/devices.md, "Session limits"):
# - OLT, Huawei SmartAX: no MA5600T/MA5800 figure was found in public material; the
#   SmartAX UA5000 manual (same access-node family and CLI) allows "up to 6
#   concurrently online terminal users (4 Telnet users and 2 other users)": 4 remote
#   CLI sessions. (Huawei VRP devices allow 5 VTY users by default, up to 15 with
#   `user-interface maximum-vty`: AR2200 configuration guide, "Configuring the Maximum
#   Number of VTY User Interfaces"; SmartAX is not VRP, so the lower SmartAX figure.)
# - BNG, Cisco IOS / IOS-XE: `line vty 0 4` exists by default: 5 concurrent VTY
#   sessions (up to 16 once `line vty 0 15` is configured).
OLT_MAX_SESSIONS = 4
BNG_MAX_SESSIONS = 5


def _plan(name: str, down_kbps: int, up_kbps: int, profile_id: int) -> Plan:
    return Plan(
        name=name,
        download_kbps=down_kbps,
        upload_kbps=up_kbps,
        line_profile_id=profile_id,
        service_profile_id=profile_id,
        gem_port=1,
        policy_in=f"PLAN-{name}-IN",
        policy_out=f"PLAN-{name}-OUT",
    )


LAB_PLANS: tuple[Plan, ...] = (
    _plan("100M", 100_000, 50_000, 10),
    _plan("500M", 500_000, 250_000, 20),
    _plan("1G", 1_000_000, 500_000, 30),
)


def olt_names(count: int) -> list[str]:
    """``olt-1`` .. ``olt-<count>``; ValueError outside 1..MAX_OLTS."""
    if not 1 <= count <= MAX_OLTS:
        raise ValueError(f"the lab runs 1 to {MAX_OLTS} OLTs, not {count}")
    return [f"olt-{i}" for i in range(1, count + 1)]


def bng_of(olt_name: str) -> str:
    """The BNG an OLT hangs off: olt-1 and olt-2 share bng-1, olt-k (k > 2) has bng-(k-1)."""
    k = int(olt_name.rpartition("-")[2])
    return BNG_NAME if k <= 2 else f"bng-{k - 1}"


def bng_names(olt_count: int) -> list[str]:
    return list(dict.fromkeys(bng_of(name) for name in olt_names(olt_count)))


def ip_pool(bng_name: str) -> tuple[str, str]:
    """(pool, gateway) of a lab BNG: bng-1 100.64.0.0/16, bng-2 100.65.0.0/16, ..."""
    k = int(bng_name.rpartition("-")[2])
    net = ipaddress.ip_network(f"100.{63 + k}.0.0/16")
    return str(net), str(net.network_address + 1)


def capacity(olt_count: int) -> int:
    """How many services a lab of ``olt_count`` OLTs holds: per BNG, the fewest of its
    VLANs, its OLTs' ONT ids and its pool's addresses."""
    names = olt_names(olt_count)
    total = 0
    for bng in bng_names(olt_count):
        olts = sum(1 for name in names if bng_of(name) == bng)
        onts = olts * sum(BOARDS.values()) * ONTS_PER_PORT
        ips = ipaddress.ip_network(ip_pool(bng)[0]).num_addresses - 3  # net, gateway, bcast
        total += min(VLAN_LAST - VLAN_FIRST + 1, onts, ips)
    return total


def build_inventory(
    *,
    host: str,
    olt_ports: Mapping[str, int],
    bng_port: int,
    radius_port: int,
    nas_port: int,
    bng_ports: Mapping[str, int] | None = None,
) -> Inventory:
    """The lab inventory for devices listening on ``host`` at the given ports
    (``bng_port`` is bng-1's, ``bng_ports`` those of the BNGs a larger lab adds)."""
    olts = [
        Olt(
            name=name,
            host=host,
            port=port,
            bng=bng_of(name),
            vlan_first=VLAN_FIRST,
            vlan_last=VLAN_LAST,
            boards=dict(BOARDS),
            username=LAB_USER,
            password=LAB_PASSWORD,
            max_sessions=OLT_MAX_SESSIONS,
        )
        for name, port in olt_ports.items()
    ]
    bngs = [
        Bng(
            name=name,
            host=host,
            port=port,
            ip_pool=ip_pool(name)[0],
            ip_gateway=ip_pool(name)[1],
            nas_host=host,
            nas_port=nas_port,
            nas_secret=LAB_SECRET,
            username=LAB_USER,
            password=LAB_PASSWORD,
            max_sessions=BNG_MAX_SESSIONS,
        )
        for name, port in {BNG_NAME: bng_port, **(bng_ports or {})}.items()
    ]
    radius = RadiusServer(host=host, auth_port=radius_port, secret=LAB_SECRET)
    return Inventory(
        olts=olts,
        bngs=bngs,
        radius=radius,
        plans=list(LAB_PLANS),
        walled_garden_policy=WALLED_GARDEN,
    )


def inventory_yaml(inventory: Inventory) -> str:
    data = inventory.model_dump(mode="json", exclude_none=True)
    header = "# fiberflow device lab inventory (generated by `fiberflow lab`; a lab, not secrets)\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def write_inventory(inventory: Inventory, path: Path | str) -> Path:
    """Write the inventory as YAML atomically (temporary file + rename); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, inventory_yaml(inventory))
    return target


def probe_writable(path: Path) -> None:
    """Raise OSError now if ``path`` cannot be written (before anything starts)."""
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{parent} is not a directory", str(parent))
    parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    os.close(fd)
    os.unlink(tmp)


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one, never a partial write."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
