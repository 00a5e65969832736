"""The lab CLIs through stock netmiko: prompts, modes, and output that parses like the captures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netmiko import BaseConnection, ConnectHandler

from fiberflow.devices.bng.parsing import parse_running_interfaces
from fiberflow.devices.textfsm_parse import parse_ntc
from fiberflow.lab.cli_servers import LabThread
from fiberflow.lab.devices import LabBng, LabOlt

CAPTURES = Path(__file__).parent.parent / "devices" / "captures"
SN = "485754431A2B3C4D"
ANY_PROMPT = r"[>#]\s*$"


def connect(device_type: str, port: int) -> BaseConnection:
    return ConnectHandler(
        device_type=device_type,
        host="127.0.0.1",
        port=port,
        username="lab",
        password="lab",
        secret="",
        use_keys=False,
        allow_agent=False,
    )


@pytest.fixture
def olt_conn(lab_olt: LabOlt) -> Iterator[BaseConnection]:
    conn = connect("huawei_olt", lab_olt.port)
    yield conn
    conn.disconnect()


def fields(rows: list[dict[str, object]]) -> set[str]:
    """Names of the fields a parse filled in."""
    return {k for row in rows for k, val in row.items() if val not in ("", [], None)}


def capture(rel: str) -> str:
    return (CAPTURES / rel).read_text()


def test_huawei_prompts_and_modes(olt_conn: BaseConnection, lab_olt: LabOlt) -> None:
    assert olt_conn.find_prompt() == "olt-1>"
    olt_conn.enable()
    assert olt_conn.find_prompt() == "olt-1#"
    olt_conn.config_mode()
    assert olt_conn.find_prompt() == "olt-1(config)#"
    olt_conn.send_command("interface gpon 0/2", expect_string=ANY_PROMPT)
    assert olt_conn.find_prompt() == "olt-1(config-if-gpon-0/2)#"
    bad = olt_conn.send_command("interface gpon 0/3", expect_string=ANY_PROMPT)
    assert "% Unknown command" in bad  # not in config mode any more: a gpon-mode command
    olt_conn.send_command("quit", expect_string=ANY_PROMPT)
    assert olt_conn.find_prompt() == "olt-1(config)#"
    assert "% Parameter error" in olt_conn.send_command(
        "interface gpon 0/3", expect_string=ANY_PROMPT
    )
    olt_conn.exit_config_mode()
    assert olt_conn.find_prompt() == "olt-1#"


def test_huawei_logout_question_is_answered(lab_olt: LabOlt) -> None:
    conn = connect("huawei_olt", lab_olt.port)
    conn.enable()
    conn.cleanup()  # raises ValueError unless the logout question was seen and answered
    assert not conn.is_alive()
    conn.disconnect()


def test_huawei_output_parses_like_captures(olt_conn: BaseConnection, lab_olt: LabOlt) -> None:
    olt_conn.enable()
    olt_conn.config_mode()
    olt_conn.send_command("interface gpon 0/1", expect_string=ANY_PROMPT)
    added = olt_conn.send_command(
        f'ont add 0 2 sn-auth {SN} omci ont-lineprofile-id 10 ont-srvprofile-id 10 desc "c1"',
        expect_string=ANY_PROMPT,
    )
    olt_conn.send_command("quit", expect_string=ANY_PROMPT)
    olt_conn.send_command(
        "service-port 5827 vlan 2 gpon 0/1/0 ont 2 gemport 1 multi-service user-vlan 2 "
        "tag-transform translate",
        expect_string=ANY_PROMPT,
    )
    time.sleep(lab_olt.state.online_delay * 2)  # online: optics and load lines filled in
    cases = [
        ("ont add", added, "huawei_smartax/ont_add--ont_add.raw"),
        (
            "display ont info 0 1 0 2",
            olt_conn.send_command("display ont info 0 1 0 2", expect_string=ANY_PROMPT),
            "huawei_smartax/display_ont_info_0_1_2_3--display_ont_info_2.raw",
        ),
        (
            "display ont info 0 1 0 all",
            olt_conn.send_command("display ont info 0 1 0 all", expect_string=ANY_PROMPT),
            "huawei_smartax/display_ont_info_0_1_2--display_ont_info_fsp.raw",
        ),
        (
            "display service-port all",
            olt_conn.send_command("display service-port all", expect_string=ANY_PROMPT),
            "huawei_smartax/display_service-port_all--display_service-port_all.raw",
        ),
    ]
    for command, lab_text, rel in cases:
        real = parse_ntc("huawei_smartax", command, capture(rel))
        ours = parse_ntc("huawei_smartax", command, lab_text)
        assert ours, command
        missing = fields(real) - fields(ours)
        # The lab leaves out a real ONT's optics, IP and time-stamp lines; every field the
        # drivers read is filled in, and nothing the lab prints is outside the template.
        allowed = {
            "ont_llid", "ont_rtt", "power_type", "multicast_mode", "ip_0_address_mask",
            "ip_1_address_mask", "last_down_cause", "last_up_time", "last_down_time",
            "last_dying_gasp_time", "ont_online_duration", "ont_system_up_duration",
            "last_restart_reason", "type_d_support", "ont_nni_type", "ont_actual_nni_type",
            "last_ont_actual_nni_type", "tr069_ip_index", "fiber_route", "tdm_port_type",
            "tdm_service_type", "mac_learning_function_switch",
            "ont_transparent_function_switch", "ring_check_switch", "ring_port_auto_shutdown",
            "ring_detect_frequency", "ring_resume_interval", "ring_detect_period",
            "service_profile_multicast_forward_mode", "service_profile_multicast_forward_vlan",
            "service_profile_multicast_mode", "upstream_igmp_packet_forward_mode",
            "upstream_igmp_packet_forward_vlan", "upstream_igmp_packet_priority",
            "native_vlan_option", "upstream_pq_color_policy", "downstream_pq_color_policy",
            "monitor_link", "mtu_byte", "tr069_server_profile_id", "tr069_server_profile_name",
            "battery_state",
        }  # fmt: skip
        assert missing <= allowed, (command, missing - allowed)
    detail = parse_ntc("huawei_smartax", "display ont info 0 1 0 2", cases[1][1])[0]
    assert detail["serial_number"].startswith(SN) and detail["description"] == "c1"


def test_huawei_failure_texts(olt_conn: BaseConnection, lab_olt: LabOlt) -> None:
    olt_conn.enable()
    assert "Failure: The required ONT does not exist" in olt_conn.send_command(
        "display ont info 0 1 0 9", expect_string=ANY_PROMPT
    )
    olt_conn.config_mode()
    olt_conn.send_command("interface gpon 0/1", expect_string=ANY_PROMPT)
    add = f'ont add 0 2 sn-auth {SN} omci ont-lineprofile-id 10 ont-srvprofile-id 10 desc "x"'
    assert "success: 1" in olt_conn.send_command(add, expect_string=ANY_PROMPT)
    assert "Failure: SN already exists" in olt_conn.send_command(add, expect_string=ANY_PROMPT)
    other = add.replace(SN, "4857544300000001")
    assert "Failure: The ONT ID has already existed" in olt_conn.send_command(
        other, expect_string=ANY_PROMPT
    )
    assert "does not exist" in olt_conn.send_command("ont delete 0 9", expect_string=ANY_PROMPT)
    assert "success: 1" in olt_conn.send_command("ont delete 0 2", expect_string=ANY_PROMPT)
    assert lab_olt.state.dump()["onts"] == []


def test_cisco_prompts_config_and_errors(lab_bng: LabBng) -> None:
    conn = connect("cisco_ios", lab_bng.port)
    try:
        assert conn.find_prompt() == "bng-1>"
        conn.enable()
        assert conn.find_prompt() == "bng-1#"
        out = conn.send_config_set(
            [
                "interface GigabitEthernet0/0/1.100",
                "encapsulation dot1Q 100 second-dot1q 7",
                "description cust-1",
                "ip address 100.64.0.2 255.255.255.252",
                "service-policy input PLAN-IN",
                "service-policy output PLAN-OUT",
            ]
        )
        assert "bng-1(config-subif)#" in out
        text = conn.send_command("show running-config interface GigabitEthernet0/0/1.100")
        real = parse_running_interfaces(capture("cisco_ios/show_running-config_interface.raw"))
        (ours,) = parse_running_interfaces(text)
        assert (ours.vlan, ours.inner_vlan, ours.policy_in, ours.policy_out) == (
            100, 7, "PLAN-IN", "PLAN-OUT",
        )  # fmt: skip
        assert {k for k, v in vars_of(ours).items() if v is not None} == {
            k for k, v in vars_of(real[0]).items() if v is not None
        }
        missing = conn.send_command("show running-config interface GigabitEthernet0/0/1.9")
        assert "% Invalid input detected" in missing
        bad = conn.send_config_set(
            ["interface GigabitEthernet0/0/1.200", "ip address 1.2.3.4 255.0.0.0"]
        )
        assert "% Configuring IP routing on a LAN subinterface" in bad
        assert "% Invalid input" in conn.send_config_set(["frobnicate"])
    finally:
        conn.disconnect()


def vars_of(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_starters_pick_free_ports_and_close() -> None:
    with LabThread() as lab:
        olt_a = lab.start_olt("olt-a", online_delay=0.0)
        olt_b = lab.start_olt("olt-b")
        bng = lab.start_bng("bng-x")
        assert len({olt_a.port, olt_b.port, bng.port}) == 3
        conn = connect("huawei_olt", olt_a.port)
        assert conn.find_prompt() == "olt-a>"
        olt_a.close()  # also ends the open session
        lab.run(olt_a.wait_closed())
        assert not olt_a.connections
        conn.disconnect()
    with pytest.raises(Exception):  # noqa: B017 - any refusal: nothing listens any more
        connect("huawei_olt", olt_a.port)
