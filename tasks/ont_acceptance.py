"""Accepting an ONT into service: it must come online, and receive enough light.

Shared by the testing steps of provisioning and ONT replacement. The receive power is
read with the OLT driver's ``get_optical_info`` (``display ont optical-info`` on a
Huawei OLT); below ``FIBERFLOW_MIN_RX_POWER_DBM`` the step fails with the measured value
in its message, a permanent error (a dirty connector or a long drop does not get better
by asking again), so the operation compensates.
"""

from __future__ import annotations

import logging
import time

from fiberflow.core.catalogue import Step
from fiberflow.core.settings import get_settings
from fiberflow.devices.base import PermanentDeviceError
from fiberflow.devices.olt.models import OntInfo
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.tasks import devices
from fiberflow.tasks.context import RunContext

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
MEASURED = "measured"  # the progress status that carries the receive power


class OntNotOnline(PermanentDeviceError):
    """The ONT did not report online within ``FIBERFLOW_ONT_ONLINE_TIMEOUT_SECONDS``."""


class RxPowerTooLow(PermanentDeviceError):
    """The ONT receives less light than ``FIBERFLOW_MIN_RX_POWER_DBM`` (``rx_power_dbm``
    None: it reports no reading at all)."""

    def __init__(self, device: str, message: str, rx_power_dbm: float | None) -> None:
        super().__init__(device, message)
        self.rx_power_dbm = rx_power_dbm

    def __reduce__(self) -> tuple[type[RxPowerTooLow], tuple[str, str, float | None]]:
        # Picklable (a Prefect state may persist it): its args are not its signature.
        return type(self), (self.device, self.message, self.rx_power_dbm)


def wait_online(
    ctx: RunContext | None, step: Step, olt: OltDriver, olt_name: str, fsp: str, ont_id: int
) -> OntInfo:
    """Poll the ONT until it reports online; OntNotOnline after the timeout."""
    deadline = time.monotonic() + get_settings().ont_online_timeout_seconds
    while True:
        with devices.device_slot(olt_name):
            ont = olt.get_ont(fsp, ont_id)
        if ont is not None and ont.online:
            return ont
        if time.monotonic() > deadline:
            state = ont.run_state if ont else "missing"
            raise OntNotOnline(olt_name, f"ONT {fsp} {ont_id} did not come online "
                               f"(run state {state})")  # fmt: skip
        if ctx is not None:  # chatty: the coalescer keeps at most one a second
            ctx.progress(step, step.status, "Waiting for the ONT to come online")
        time.sleep(POLL_SECONDS)


def check_rx_power(
    ctx: RunContext | None, step: Step, olt: OltDriver, olt_name: str, fsp: str, ont_id: int
) -> float:
    """The ONT's receive power in dBm, announced in a progress event of ``step``;
    RxPowerTooLow below the minimum (or when the ONT reports no reading)."""
    minimum = get_settings().min_rx_power_dbm
    with devices.device_slot(olt_name):
        info = olt.get_optical_info(fsp, ont_id)
    rx = None if info is None else info.rx_power_dbm
    fields = {"device": olt_name, "fsp": fsp, "ont_id": ont_id, "rx_power_dbm": rx,
              "min_rx_power_dbm": minimum}  # fmt: skip
    if rx is None:
        log.warning("no optical reading", extra=ctx.log_extra(**fields) if ctx else fields)
        raise RxPowerTooLow(olt_name, f"ONT {fsp} {ont_id} reports no receive power "
                            f"(minimum {minimum:.1f} dBm)", None)  # fmt: skip
    if rx < minimum:
        log.warning("receive power too low", extra=ctx.log_extra(**fields) if ctx else fields)
        raise RxPowerTooLow(olt_name, f"ONT {fsp} {ont_id} receive power {rx:.2f} dBm is "
                            f"below the minimum {minimum:.1f} dBm", rx)  # fmt: skip
    log.info("receive power accepted", extra=ctx.log_extra(**fields) if ctx else fields)
    if ctx is not None:
        # Its own status: a new status within the step is never coalesced away.
        ctx.progress(step, MEASURED, f"ONT receive power {rx:.2f} dBm "
                     f"(minimum {minimum:.1f} dBm)", rx_power_dbm=rx)  # fmt: skip
    return rx
