"""``display current-configuration`` of a lab MA5800: the sections that hold what the lab
models (boards, ONTs, service-ports), laid out as the device prints them.
"""

from __future__ import annotations

from fiberflow.lab.huawei_render_system import GPON_BOARD
from fiberflow.lab.olt_state import Key, Ont, ServicePort

# The first line names the software version and the configuration's build.
HEADER = "[MA5800V100R019: 8125]"


def current_configuration(
    name: str,
    boards: dict[tuple[int, int], int],
    onts: list[tuple[Key, Ont]],
    service_ports: list[ServicePort],
) -> str:
    """``onts`` sorted by key, ``service_ports`` by index (OltState.configuration)."""
    lines = [HEADER, "#", "[pre-config]", "  <pre-config>"]
    lines += [f" board add {f}/{s} {GPON_BOARD}" for f, s in sorted(boards)]
    lines += ["#", "[global-config]", "  <global-config>", f" sysname {name}", "#", "[gpon]"]
    by_board: dict[tuple[int, int], list[tuple[Key, Ont]]] = {b: [] for b in boards}
    for key, ont in onts:
        by_board[key[:2]].append((key, ont))
    for (f, s), ports in sorted(boards.items()):
        lines += [f"  <gpon-{f}/{s}>", f" interface gpon {f}/{s}"]
        lines += [f" port {p} ont-auto-find enable" for p in range(ports)]
        board_onts = by_board[(f, s)]
        for (_, _, p, i), o in board_onts:
            lines.append(
                f' ont add {p} {i} sn-auth "{o.serial}" omci ont-lineprofile-id '
                f"{o.line_profile_id} ont-srvprofile-id {o.service_profile_id} "
                f'desc "{o.description}"'
            )
        # A deactivated ONT is its `ont add` followed by the deactivation.
        lines += [f" ont deactivate {k[2]} {k[3]}" for k, o in board_onts if not o.active]
        lines.append("#")
    lines += ["[bbs-config]", "  <bbs-config>"]
    lines += [
        f" service-port {sp.index} vlan {sp.vlan} gpon {sp.frame}/{sp.slot}/{sp.port} "
        f"ont {sp.ont_id} gemport {sp.gem_port} multi-service user-vlan {sp.user_vlan} "
        "tag-transform translate"
        for sp in service_ports
    ]
    lines += ["#", "return"]
    return "\n".join(lines)
