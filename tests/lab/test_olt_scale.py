"""A full MA5800 shelf in the lab: 2 boards x 16 ports x 128 ONTs, listed in one command."""

from __future__ import annotations

from netmiko import ConnectHandler
from ntc_templates.parse import parse_output

from fiberflow.lab.devices import LabOlt

BOARDS, PORTS, ONTS_PER_PORT = (1, 2), 16, 128


def test_display_ont_info_lists_a_full_shelf(lab_olt: LabOlt) -> None:
    onts = [
        {"fsp": f"0/{s}/{p}", "ont_id": i, "serial": f"48575443{s:02X}{p:02X}{i:04X}",
         "description": f"sub-{s}-{p}-{i}", "line_profile_id": 10, "service_profile_id": 10}
        for s in BOARDS for p in range(PORTS) for i in range(ONTS_PER_PORT)
    ]  # fmt: skip
    assert lab_olt.seed(onts=onts) == {"onts": 4096, "service_ports": 0, "failures": []}
    conn = ConnectHandler(device_type="huawei_olt", host="127.0.0.1", port=lab_olt.port,
                          username="lab", password="lab", use_keys=False)  # fmt: skip
    try:
        conn.enable()
        text = conn.send_command("display ont info 0 all", read_timeout=60)
    finally:
        conn.disconnect()
    assert text.count("the total of ONTs are: 128,") == len(BOARDS) * PORTS
    rows = parse_output(platform="huawei_smartax", command="display ont info 0 all", data=text)
    assert len(rows) == 4096
    seen = {(r["fsp"].replace(" ", ""), int(r["ont_id"]), r["serial_number"]) for r in rows}
    assert seen == {(o["fsp"], o["ont_id"], o["serial"]) for o in onts}
