"""Reconcile one service whose operation's flow run died without its hooks running
(worker SIGKILLed, process crashed): compensate, mark failed, publish the failed event."""

from __future__ import annotations

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.tasks.reconcile import compensate_crashed_run


@flow(name=catalogue.RECONCILE.flow)
def reconcile(service_id: str, reason: str = "flow run stopped reporting") -> str:
    return compensate_crashed_run(service_id, reason)
