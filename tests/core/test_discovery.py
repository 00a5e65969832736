"""core/discovery.py: which ONT seen in autofind binds to which waiting order."""

from __future__ import annotations

import pytest

from fiberflow.core import catalogue
from fiberflow.core.catalogue import TRANSITIONAL, Operation, ServiceStatus
from fiberflow.core.db.models import InvalidTransition, ServiceInstance
from fiberflow.core.discovery import Binding, Sighting, WaitingOrder, decide

SN_A = "485754430000000A"
SN_B = "485754430000000B"
SN_C = "485754430000000C"


def order(
    sid: str, serial: str | None = None, port: str = "0/1/3", olt: str = "olt-1"
) -> WaitingOrder:
    return WaitingOrder(sid, olt, port, serial)


def seen(serial: str, port: str = "0/1/3", olt: str = "olt-1") -> Sighting:
    return Sighting(olt, port, serial)


def test_an_exact_serial_binds_whatever_else_waits_on_the_port() -> None:
    d = decide([seen(SN_A), seen(SN_B)], [order("s1", SN_A), order("s2"), order("s3")])
    assert Binding("s1", SN_A, by_serial=True) in d.bindings
    assert [b.service_id for b in d.bindings] == ["s1"]
    assert "2 orders wait on olt-1 0/1/3" in d.waiting["s2"] and d.waiting["s3"] == d.waiting["s2"]


def test_a_serial_less_order_binds_the_one_unknown_ont_on_its_port() -> None:
    d = decide([seen(SN_A), seen(SN_B, port="0/1/4")], [order("s1")])
    assert d.bindings == [Binding("s1", SN_A, by_serial=False)] and d.waiting == {}


def test_after_the_exact_match_the_serial_less_order_is_alone_on_its_port() -> None:
    d = decide([seen(SN_A), seen(SN_B)], [order("s1", SN_A), order("s2")])
    assert {(b.service_id, b.serial) for b in d.bindings} == {("s1", SN_A), ("s2", SN_B)}


def test_two_unknown_onts_on_the_port_bind_nothing() -> None:
    d = decide([seen(SN_A), seen(SN_B)], [order("s1")])
    assert d.bindings == []
    assert d.waiting["s1"].startswith("2 unknown ONTs appeared on olt-1 0/1/3")


def test_an_ont_a_service_holds_is_never_unknown() -> None:
    d = decide([seen(SN_A)], [order("s1")], held={SN_A: "other"})
    assert d.bindings == [] and "no unknown ONT" in d.waiting["s1"]


def test_a_serial_another_order_names_is_not_unknown() -> None:
    # SN_A belongs to s2 (ordered on another port): s1 must not take it.
    d = decide([seen(SN_A)], [order("s1"), order("s2", SN_A, port="0/1/4")])
    assert d.bindings == []
    assert "appears on olt-1 0/1/3, not on the ordered olt-1 0/1/4" in d.waiting["s2"]


def test_a_serial_on_the_wrong_olt_or_nowhere_keeps_waiting() -> None:
    d = decide([seen(SN_A, olt="olt-2")], [order("s1", SN_A), order("s2", SN_C)])
    assert d.bindings == []
    assert "appears on olt-2 0/1/3" in d.waiting["s1"]
    assert "has not appeared in autofind yet" in d.waiting["s2"]


def test_an_order_that_names_a_serial_is_not_given_another_ont() -> None:
    d = decide([seen(SN_B)], [order("s1", SN_A)])
    assert d.bindings == [] and "has not appeared" in d.waiting["s1"]


def test_the_zero_touch_status_machine() -> None:
    svc = ServiceInstance()
    svc.await_ont()
    assert svc.status == "awaiting_ont"
    with pytest.raises(InvalidTransition):
        svc.await_ont()
    for op in (Operation.SUSPENSION, Operation.RESUMPTION, Operation.REPROVISIONING):
        with pytest.raises(InvalidTransition):
            svc.begin(op)
    with pytest.raises(InvalidTransition):
        svc.fail("a waiting order is not mid-operation")
    svc.begin(Operation.PROVISIONING)
    assert svc.status == "provisioning"
    with pytest.raises(InvalidTransition):
        svc.withdraw()  # bound: terminating it is a run like any other

    waiting = ServiceInstance()
    waiting.await_ont()
    waiting.withdraw()
    assert (waiting.status, waiting.current_operation) == ("terminated", "termination")
    with pytest.raises(InvalidTransition):
        ServiceInstance(status="active").await_ont()
    assert ServiceStatus.AWAITING_ONT not in TRANSITIONAL  # the reconciler leaves it alone


def test_the_discovery_deployment() -> None:
    d = catalogue.DISCOVER_ONTS
    assert d in catalogue.DEPLOYMENTS and d.full_name == "discover-onts/discover-onts"
    assert (d.cron, d.concurrency_limit, d.collision_strategy) == ("* * * * *", 1, "CANCEL_NEW")
    step = catalogue.AWAITING_ONT_STEP
    assert (step.operation, step.number, step.total, step.status) == (
        Operation.PROVISIONING, 1, len(catalogue.PROVISIONING.steps), "waiting")  # fmt: skip
