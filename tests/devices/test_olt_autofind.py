"""``display ont autofind all`` read by the Huawei driver: parsed with ntc-templates on a
real capture, and over real SSH against the lab OLT (plugged, registered, none)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fiberflow.devices.base import CommandRecord
from fiberflow.devices.inventory import Olt
from fiberflow.devices.olt import HuaweiOlt
from fiberflow.devices.olt.autofind import AutofindOnt, parse_autofind
from fiberflow.devices.textfsm_parse import ParseError
from fiberflow.lab.devices import LabOlt

CAPTURE = (
    Path(__file__).parent / "captures" / "huawei_smartax"
    / "display_ont_autofind--display_ont_autofind.raw"
)  # fmt: skip
SN1 = "485754431A2B3C4D"
SN2 = "48575443000000AA"


def test_parse_a_real_capture() -> None:
    assert parse_autofind(CAPTURE.read_text()) == [
        AutofindOnt(
            fsp="0/0/0",
            serial="12345678A12BC3AB",
            vendor_id="HWTC",
            equipment_id="EG8145X6-10",
            found_at=datetime(2000, 1, 1, tzinfo=UTC),
        )
    ]


def test_none_found_is_an_empty_list() -> None:
    assert parse_autofind("  Failure: The automatically found ONTs do not exist\n") == []


def test_a_serial_that_is_not_gpon_hex_is_refused() -> None:
    text = CAPTURE.read_text().replace("12345678A12BC3AB", "12345678A12BC3A;")
    with pytest.raises(ParseError):
        parse_autofind(text)


def test_read_autofind_over_ssh_lists_plugged_unregistered_onts(
    lab_olt: LabOlt, olt_inventory: Olt
) -> None:
    records: list[CommandRecord] = []
    olt = HuaweiOlt(olt_inventory, audit=records.append)
    assert olt.read_autofind() == []
    lab_olt.plug("0/1/3", SN1)
    lab_olt.plug("0/2/15", SN2, rx_power_dbm=-21.0)
    found = olt.read_autofind()
    assert [(f.fsp, f.serial, f.vendor_id) for f in found] == [
        ("0/1/3", SN1, "HWTC"),
        ("0/2/15", SN2, "HWTC"),
    ]
    assert all(f.found_at is not None for f in found)
    # A registered ONT leaves autofind.
    olt.add_ont("0/1/3", None, SN1, 10, 10, "cust-1")
    assert [f.serial for f in olt.read_autofind()] == [SN2]
    assert [r.command for r in records].count("display ont autofind all") == 3
