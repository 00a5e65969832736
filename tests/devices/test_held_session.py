"""A driver's ``held()`` scope: consecutive operations share one CLI session (one login),
a session that died is never reused, and a nested scope opens a fresh one. Against the
lab's SSH devices (real netmiko sessions), counted by the lab's own counters."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from fiberflow.devices.base import CommandRecord, TransientDeviceError
from fiberflow.devices.bng.cisco import CiscoBng, ConfigRejected
from fiberflow.devices.inventory import Bng, Olt
from fiberflow.devices.olt.huawei import HuaweiOlt
from fiberflow.lab.devices import LabBng, LabOlt
from fiberflow.lab.lab_inventory import OLT_MAX_SESSIONS

SN = "485754431A2B3C4D"


def test_two_operations_one_login(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    records: list[CommandRecord] = []
    # max_sessions 1: the scope takes the per-process slot once, not once per call.
    olt = HuaweiOlt(olt_inventory.model_copy(update={"max_sessions": 1}), audit=records.append)
    with olt.held():
        added = olt.add_ont("0/1/3", None, SN, 10, 10, "held")
        ont_id = int(str(added.detail["ont_id"]))
        olt.add_service_port("0/1/3", ont_id, 1, 100)
        assert lab_olt.counters.open == 1
    assert lab_olt.counters.logins == 1 and lab_olt.counters.connections == 1
    assert lab_olt.state.dump()["service_ports"]
    # Every command is still audited; the session's set-up (enable) once.
    assert [r.command for r in records].count("enable") == 1
    assert any(r.command.startswith("ont add") for r in records)
    # Outside the scope: a session per operation, as before.
    olt.get_ont("0/1/3", ont_id)
    olt.get_ont("0/1/3", ont_id)
    assert lab_olt.counters.logins == 3


def test_transport_failure_is_not_reused(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    olt = HuaweiOlt(olt_inventory)
    with olt.held():
        olt.find_ont_by_serial(SN)
        lab_olt.faults.update(drop_match=r"^display service-port")
        with pytest.raises(TransientDeviceError):
            olt.list_service_ports("0/1/3", 0)
        lab_olt.faults.clear()
        connections = lab_olt.counters.connections
        # The dead session is not used again: the next call fails without the device.
        with pytest.raises(TransientDeviceError, match="held session lost"):
            olt.get_ont("0/1/3", 0)
        assert lab_olt.counters.connections == connections
        # A nested scope (a cleanup) gets a fresh session.
        with olt.held():
            assert olt.get_ont("0/1/3", 0) is None
        assert lab_olt.counters.logins == 2
    # The next scope (a task's retry) logs in again.
    with olt.held():
        assert olt.find_ont_by_serial(SN) is None
    assert lab_olt.counters.logins == 3
    assert lab_olt.counters.open == 0


def test_nested_scope_reuses_a_live_session(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    olt = HuaweiOlt(olt_inventory)
    with olt.held():
        olt.find_ont_by_serial(SN)
        with olt.held():
            olt.find_ont_by_serial(SN)
        olt.find_ont_by_serial(SN)
    assert lab_olt.counters.logins == 1


def test_refused_line_leaves_the_held_session_usable(bng_inventory: Bng, lab_bng: LabBng) -> None:
    """A rejected line stops IOS in config-subif: the scope goes back to the exec prompt
    (``end``), so the next operation in the same session works as in a new one."""
    bng = CiscoBng(bng_inventory)
    lab_bng.faults.update(error_replies={r"^ip address": "% Invalid input detected at '^' marker."})
    with bng.held():
        with pytest.raises(ConfigRejected):
            bng.add_subscriber(200, "100.64.0.10", "255.255.0.0", "PLAN-100M-IN",
                               "PLAN-100M-OUT", "held")  # fmt: skip
        lab_bng.faults.clear()
        bng.remove_subscriber(200)
        assert bng.get_subscriber(200) is None
        bng.add_subscriber(200, "100.64.0.10", "255.255.0.0", "PLAN-100M-IN",
                           "PLAN-100M-OUT", "held")  # fmt: skip
        sub = bng.get_subscriber(200)
    assert sub is not None and sub.ip_address == "100.64.0.10"
    assert lab_bng.counters.logins == 1


def test_the_lab_refuses_a_session_beyond_its_vty_lines(olt_inventory: Olt,
                                                         lab_olt: LabOlt) -> None:  # fmt: skip
    """The lab OLT takes OLT_MAX_SESSIONS sessions at once, like a real one's VTY lines:
    an inventory that allows more gets the next login refused (transient, retried)."""
    assert lab_olt.max_sessions == OLT_MAX_SESSIONS
    too_many = olt_inventory.model_copy(update={"max_sessions": OLT_MAX_SESSIONS + 1})
    drivers = [HuaweiOlt(too_many) for _ in range(OLT_MAX_SESSIONS + 1)]
    with ExitStack() as stack:
        for olt in drivers[:-1]:
            stack.enter_context(olt.held())
            olt.find_ont_by_serial(SN)
        assert lab_olt.counters.open == OLT_MAX_SESSIONS
        with pytest.raises(TransientDeviceError, match="cannot open session"):
            drivers[-1].find_ont_by_serial(SN)
        assert lab_olt.counters.refused == 1
    assert drivers[-1].find_ont_by_serial(SN) is None  # a line is free again
    assert lab_olt.counters.peak_open == OLT_MAX_SESSIONS
