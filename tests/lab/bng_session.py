"""A stock-netmiko session on the lab BNG and the provisioning-like state its tests start
from: three subscribers (one QinQ, one shut down) and a described uplink, typed
through the CLI."""

from __future__ import annotations

from netmiko import BaseConnection, ConnectHandler

UPLINK = "GigabitEthernet0/0/1"
SUBS = {  # vlan -> (inner, ip, description, shut)
    100: (None, "100.64.0.2", "svc-100", False),
    101: (7, "100.64.0.6", "svc-101", False),
    102: (None, "100.64.0.10", "svc-102", True),
}
PLAN = ("PLAN-100M-IN", "PLAN-100M-OUT")


def connect(port: int) -> BaseConnection:
    return ConnectHandler(
        device_type="cisco_ios",
        host="127.0.0.1",
        port=port,
        username="lab",
        password="lab",
        secret="",
        use_keys=False,
        allow_agent=False,
    )


def provision(conn: BaseConnection) -> None:
    lines = [f"interface {UPLINK}", "description core-uplink"]
    for vlan, (inner, ip, desc, shut) in SUBS.items():
        qinq = f" second-dot1q {inner}" if inner else ""
        lines += [
            f"interface {UPLINK}.{vlan}",
            f"description {desc}",
            f"encapsulation dot1Q {vlan}{qinq}",
            f"ip address {ip} 255.255.255.252",
            f"service-policy input {PLAN[0]}",
            f"service-policy output {PLAN[1]}",
            *(["shutdown"] if shut else []),
        ]
    out = conn.send_config_set(lines)
    assert "%" not in out
