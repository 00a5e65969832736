"""Optical readings: the single-ONT ``display ont optical-info`` parsed by fiberflow's own
template, on a realistic capture and over SSH against the lab OLT."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fiberflow.devices.base import InvalidInput
from fiberflow.devices.inventory import Olt
from fiberflow.devices.olt import HuaweiOlt, OpticalInfo
from fiberflow.devices.olt.parsing import parse_optical_info
from fiberflow.devices.textfsm_parse import ParseError
from fiberflow.lab.devices import LabOlt

CAPTURE = Path(__file__).parent / "captures" / "huawei_smartax"
SN = "485754431A2B3C4D"


def test_parse_capture() -> None:
    text = (CAPTURE / "display_ont_optical-info_0_1--ma5800.raw").read_text()
    assert parse_optical_info(text) == OpticalInfo(
        rx_power_dbm=-24.31,
        tx_power_dbm=2.07,
        olt_rx_power_dbm=-27.96,  # "-27.96, out of range[...]": the number is the reading
        temperature_c=51,
        voltage_v=3.26,
        bias_current_ma=11.0,
    )


def test_parse_readings_the_ont_does_not_report() -> None:
    text = "  Rx optical power(dBm)                  : -\n  Temperature(C)  : -\n"
    info = parse_optical_info(text)
    assert info.rx_power_dbm is None and info.temperature_c is None


@pytest.mark.parametrize("text", ["", "  Failure: The ONT is not online", "% Unknown command"])
def test_parse_refuses_other_output(text: str) -> None:
    with pytest.raises(ParseError):
        parse_optical_info(text)


def _reading(olt: HuaweiOlt, fsp: str, ont_id: int) -> OpticalInfo:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = olt.get_optical_info(fsp, ont_id)
        if info is not None:
            return info
        time.sleep(0.1)
    raise AssertionError("no optical reading")


def test_read_over_ssh(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    olt = HuaweiOlt(olt_inventory)
    assert olt.get_optical_info("0/1/3", 0) is None  # no such ONT
    olt.add_ont("0/1/3", 0, SN, 10, 10, "a")
    healthy = _reading(olt, "0/1/3", 0)
    assert healthy.rx_power_dbm is not None and -22.0 <= healthy.rx_power_dbm <= -18.0
    lab_olt.state.plug(SN, (0, 1, 3), -28.4)  # a dirty connector
    weak = _reading(olt, "0/1/3", 0)
    assert weak.rx_power_dbm == -28.4
    assert weak.tx_power_dbm == healthy.tx_power_dbm  # the rest is stable per serial
    olt.deactivate_ont("0/1/3", 0)
    assert olt.get_optical_info("0/1/3", 0) is None  # not online: no reading


@pytest.mark.parametrize(
    ("fsp", "ont_id"),
    [("0/1/3\nreboot", 0), ("0/9/0", 0), ("0/1/3;", 0), ("0/1/3", 128), ("0/1/3", -1)],
)
def test_bad_input_never_reaches_the_olt(
    olt_inventory: Olt, lab_olt: LabOlt, fsp: str, ont_id: int
) -> None:
    with pytest.raises(InvalidInput):
        HuaweiOlt(olt_inventory).get_optical_info(fsp, ont_id)
    assert lab_olt.counters.connections == 0
