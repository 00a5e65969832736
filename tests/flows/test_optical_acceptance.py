"""Optical acceptance in provisioning's testing step: the ONT's receive power is read
after it comes online, stored on the service and announced in a progress event; below
FIBERFLOW_MIN_RX_POWER_DBM the step fails with the measured value and everything is
compensated, as for any other failed test."""

from __future__ import annotations

import pytest

from fiberflow.core.settings import get_settings
from fiberflow.flows.provision import provision
from tests.fixtures.lifecycle import Lifecycle

SERIAL = "48575443C0FFEE01"


def test_healthy_light_is_measured_and_stored(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service(SERIAL)
    lifecycle.lab.device("olt-1").state.plug(SERIAL, (0, 1, 3), -23.25)
    provision(sid)
    svc = lifecycle.service(sid)
    assert (svc.status, svc.ont_rx_power_dbm) == ("active", -23.25), svc.error
    measured = [e.data for e in lifecycle.events(sid) if e.data.get("status") == "measured"]
    assert [(d["step"], d["rx_power_dbm"]) for d in measured] == [(5, -23.25)]
    assert measured[0]["message"] == "ONT receive power -23.25 dBm (minimum -27.0 dBm)"


def test_too_little_light_fails_the_testing_step_and_compensates(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service(SERIAL)
    lifecycle.lab.device("olt-1").state.plug(SERIAL, (0, 1, 3), -28.5)
    with pytest.raises(Exception, match=r"-28\.50 dBm is below the minimum -27\.0 dBm"):
        provision(sid)
    svc = lifecycle.service(sid)
    assert svc.status == "failed" and "-28.50 dBm" in (svc.error or "")
    assert svc.ont_rx_power_dbm == -28.5  # what the installer has to fix
    assert (svc.ip_address, svc.vlan, svc.ont_id) == (None, None, None)
    assert lifecycle.leftovers(sid, svc.radius_username) == {}
    events = lifecycle.events(sid)
    assert events[-1].event_type == "service.provisioning.failed"
    assert events[-1].data["step"] == 5 and "-28.50 dBm" in events[-1].data["error"]
    failed = [e.data for e in events if e.data.get("status") == "failed"]
    assert failed[-1]["step"] == 5 and "-28.50 dBm" in failed[-1]["message"]


def test_the_minimum_is_a_setting(lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIBERFLOW_MIN_RX_POWER_DBM", "-29.5")
    get_settings.cache_clear()
    sid = lifecycle.new_service(SERIAL)
    lifecycle.lab.device("olt-1").state.plug(SERIAL, (0, 1, 3), -28.5)
    provision(sid)
    assert lifecycle.service(sid).status == "active"


@pytest.mark.parametrize("value", ["-41", "1", "weak"])
def test_a_bad_minimum_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FIBERFLOW_MIN_RX_POWER_DBM", value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="min_rx_power_dbm"):
            get_settings()
    finally:
        get_settings.cache_clear()
