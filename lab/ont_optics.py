"""Optical readings of a lab ONT: the receive power it was plugged with, the rest derived.

Every value is stable per serial (seeded from it), so repeated displays agree with each
other and with the ONT's detail view, as they do on a device whose fibre is not touched.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: A healthy GPON receive level: well inside class B+/C+ sensitivity (-27/-30 dBm).
DEFAULT_RX_RANGE = (-22.0, -18.0)
#: The OLT port's launch power; the upstream path loses what the downstream lost.
OLT_TX_DBM = 4.5


def default_rx_power(serial: str) -> float:
    """The receive power of an ONT plugged without one given: -22..-18 dBm, per serial."""
    low, high = DEFAULT_RX_RANGE
    return round(random.Random(f"rx:{serial.upper()}").uniform(low, high), 2)


@dataclass(frozen=True)
class Optics:
    rx_dbm: float  # ONT receive power (downstream)
    tx_dbm: float  # ONT launch power (upstream)
    olt_rx_dbm: float  # what the OLT port receives from this ONT
    temperature_c: int
    voltage_v: float
    bias_ma: int
    distance_m: int


def optics(serial: str, rx_dbm: float) -> Optics:
    rnd = random.Random(f"optics:{serial.upper()}")
    tx = round(rnd.uniform(1.9, 2.8), 2)
    loss = OLT_TX_DBM - rx_dbm
    return Optics(
        rx_dbm=rx_dbm,
        tx_dbm=tx,
        olt_rx_dbm=round(tx - loss, 2),
        temperature_c=rnd.randint(40, 58),
        voltage_v=round(rnd.choice((3.24, 3.26, 3.28, 3.30, 3.32)), 3),
        bias_ma=rnd.randint(8, 16),
        distance_m=rnd.randint(300, 8000),
    )
