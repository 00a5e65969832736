"""Every lab fault type, seen through the real drivers; admin channel over SSH."""

from __future__ import annotations

import time

import pytest

from fiberflow.devices.base import DeviceAuthError, TransientDeviceError
from fiberflow.devices.bng import CiscoBng
from fiberflow.devices.inventory import Bng, Olt
from fiberflow.devices.olt import HuaweiOlt, OltCommandFailed
from fiberflow.lab.admin import LabAdminError, admin_call
from fiberflow.lab.devices import LabBng, LabOlt

SN = "485754431A2B3C4D"


def test_latency_slows_but_succeeds_and_past_timeout_is_transient(
    olt_inventory: Olt, lab_olt: LabOlt
) -> None:
    olt = HuaweiOlt(olt_inventory)
    lab_olt.faults.update(latency=0.2, latency_match=r"^display ont info")
    assert olt.get_ont("0/1/0", 1) is None  # answered, just late
    lab_olt.faults.update(latency=1.5)
    quick = HuaweiOlt(olt_inventory.model_copy(update={"timeout": 0.5}))
    with pytest.raises(TransientDeviceError):
        quick.get_ont("0/1/0", 1)


def test_auth_failure(
    olt_inventory: Olt, lab_olt: LabOlt, bng_inventory: Bng, lab_bng: LabBng
) -> None:
    lab_olt.faults.update(auth_failure=True)
    lab_bng.faults.update(auth_failure=True)
    with pytest.raises(DeviceAuthError):
        HuaweiOlt(olt_inventory).get_ont("0/1/0", 1)
    with pytest.raises(DeviceAuthError):
        CiscoBng(bng_inventory).get_subscriber(100)
    assert lab_olt.counters.logins == 0
    wrong = olt_inventory.model_copy(update={"password": "nope"})
    lab_olt.faults.clear()
    with pytest.raises(DeviceAuthError):
        HuaweiOlt(wrong).get_ont("0/1/0", 1)


def test_connection_dropped_mid_command(
    olt_inventory: Olt, lab_olt: LabOlt, bng_inventory: Bng, lab_bng: LabBng
) -> None:
    # netmiko notices a dead channel only when its read times out: keep that short.
    olt_inventory = olt_inventory.model_copy(update={"timeout": 1.0})
    bng_inventory = bng_inventory.model_copy(update={"timeout": 1.0})
    lab_olt.faults.update(drop_match=r"^ont add")
    with pytest.raises(TransientDeviceError):
        HuaweiOlt(olt_inventory).add_ont("0/1/0", 1, SN, 10, 10, "d")
    assert lab_olt.state.dump()["onts"] == []  # dropped before the OLT ran it
    lab_olt.faults.clear()
    assert HuaweiOlt(olt_inventory).add_ont("0/1/0", 1, SN, 10, 10, "d").changed  # retry works

    lab_bng.faults.update(drop_match=r"^show running-config")
    with pytest.raises(TransientDeviceError):
        CiscoBng(bng_inventory).get_subscriber(100)


def test_error_reply_for_a_command(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    lab_olt.faults.update(
        error_replies={r"^ont add": "  Failure: System is busy, please retry later"}
    )
    with pytest.raises(OltCommandFailed, match="System is busy"):
        HuaweiOlt(olt_inventory).add_ont("0/1/0", 1, SN, 10, 10, "d")


def test_ont_that_never_comes_online(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    lab_olt.faults.update(never_online=[SN])
    olt = HuaweiOlt(olt_inventory)
    olt.add_ont("0/1/0", 1, SN, 10, 10, "d")
    time.sleep(lab_olt.state.online_delay * 3)
    info = olt.get_ont("0/1/0", 1)
    assert info is not None and info.control_flag == "active" and not info.online
    lab_olt.faults.update(never_online=[])
    time.sleep(lab_olt.state.online_delay * 2)
    after = olt.get_ont("0/1/0", 1)
    assert after is not None and after.online


def test_admin_channel_over_ssh(olt_inventory: Olt, lab_olt: LabOlt, lab_bng: LabBng) -> None:
    olt = HuaweiOlt(olt_inventory)
    olt.add_ont("0/2/3", 2, SN, 10, 10, "d")
    dump = admin_call(lab_olt.port, "dump")
    assert [(o["fsp"], o["ont_id"], o["serial"]) for o in dump["onts"]] == [("0/2/3", 2, SN)]
    # Drift behind the system's back: the ONT disappears.
    assert admin_call(lab_olt.port, "delete_ont", fsp="0/2/3", ont_id=2) == {"deleted": True}
    assert olt.get_ont("0/2/3", 2) is None
    faults = admin_call(lab_olt.port, "faults", auth_failure=True, latency=0.01)
    assert faults["auth_failure"] is True and lab_olt.faults.snapshot().auth_failure
    admin_call(lab_olt.port, "clear_faults")
    assert not lab_olt.faults.snapshot().auth_failure
    assert admin_call(lab_bng.port, "dump") == {"subinterfaces": []}
    with pytest.raises(LabAdminError):
        admin_call(lab_olt.port, "no-such-op")
    with pytest.raises(LabAdminError):
        admin_call(lab_olt.port, "faults", drop_match="(unclosed")
    admin_call(lab_olt.port, "reset")
    assert lab_olt.counters.logins == 0


def test_drop_after_the_device_acted_then_retry_is_a_no_op(
    olt_inventory: Olt, lab_olt: LabOlt
) -> None:
    olt = HuaweiOlt(olt_inventory.model_copy(update={"timeout": 1.0}))
    lab_olt.faults.update(drop_match=r"^ont add", drop_after_run=True)
    with pytest.raises(TransientDeviceError):
        olt.add_ont("0/1/0", 1, SN, 10, 10, "d")
    assert [o["serial"] for o in lab_olt.state.dump()["onts"]] == [SN]  # it was applied
    lab_olt.faults.clear()
    retry = olt.add_ont("0/1/0", 1, SN, 10, 10, "d")
    assert not retry.changed and retry.detail["ont_id"] == 1
