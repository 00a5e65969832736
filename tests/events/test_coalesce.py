from __future__ import annotations

import uuid

from sqlalchemy import Engine, func, select

from fiberflow.core.db.models import EventLog
from fiberflow.events.coalesce import Coalescer
from fiberflow.events.publisher import EventPublisher
from fiberflow.events.schema import LifecycleEvent, completed, failed, progress

SID, TID = str(uuid.uuid4()), str(uuid.uuid4())


class Clock:
    """A hand-moved clock: coalescing is about time, the test decides how much passes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _p(run: str, step: int, status: str, message: str = "m") -> LifecycleEvent:
    return progress(
        "provisioning", service_id=SID, tenant_id=TID, operation_id=run,
        step=step, total_steps=6, status=status, message=message,
    )  # fmt: skip


def test_chatty_progress_within_a_step_is_at_most_one_per_second() -> None:
    clock, run = Clock(), str(uuid.uuid4())
    c = Coalescer(1.0, clock=clock)
    assert c.admit(_p(run, 5, "testing", "waiting for ONT 1/30"))
    clock.now += 0.3
    assert not c.admit(_p(run, 5, "testing", "waiting for ONT 2/30"))
    clock.now += 0.6
    assert not c.admit(_p(run, 5, "testing", "waiting for ONT 3/30"))
    clock.now += 0.1  # one second after the last stored event
    assert c.admit(_p(run, 5, "testing", "waiting for ONT 4/30"))
    clock.now += 0.99
    assert not c.admit(_p(run, 5, "testing", "waiting for ONT 5/30"))
    assert c.dropped == 3


def test_retrying_is_chatty_even_as_a_new_status() -> None:
    clock, run = Clock(), str(uuid.uuid4())
    c = Coalescer(1.0, clock=clock)
    assert c.admit(_p(run, 3, "configuring"))
    clock.now += 0.1
    assert not c.admit(_p(run, 3, "retrying", "attempt 2"))
    clock.now += 1.0
    assert c.admit(_p(run, 3, "retrying", "attempt 3"))
    clock.now += 0.1
    assert not c.admit(_p(run, 3, "retrying", "attempt 4"))


def test_step_transitions_and_status_changes_are_never_dropped() -> None:
    clock, run = Clock(), str(uuid.uuid4())
    c = Coalescer(1.0, clock=clock)
    assert c.admit(_p(run, 1, "validating"))
    assert c.admit(_p(run, 2, "allocating"))
    assert c.admit(_p(run, 3, "configuring"))
    # A compensation notice within the failing step is a status change: kept.
    assert c.admit(_p(run, 3, "compensating", "removing ONT"))
    assert c.admit(_p(run, 2, "compensating", "releasing IP"))
    assert c.admit(_p(run, 1, "compensating"))
    assert c.dropped == 0


def test_notices_are_never_coalesced_even_within_one_step() -> None:
    clock, run = Clock(), str(uuid.uuid4())
    c = Coalescer(1.0, clock=clock)
    assert c.admit(_p(run, 3, "configuring"))
    assert c.admit(_p(run, 3, "failed", "BNG refused the sub-interface"))
    # Two compensations of step 3, back to back: two notices.
    assert c.admit(_p(run, 3, "rolled_back", "Removed ONT 0/1/3 1"))
    assert c.admit(_p(run, 3, "rolled_back", "Removed the sub-interface for VLAN 100"))
    assert c.admit(_p(run, 3, "crashed", "worker died"))
    assert c.dropped == 0


def test_terminal_events_always_pass_and_close_the_workflow() -> None:
    clock, run = Clock(), str(uuid.uuid4())
    c = Coalescer(1.0, clock=clock)
    assert c.admit(_p(run, 5, "testing"))
    done = completed("provisioning", service_id=SID, tenant_id=TID, operation_id=run)
    bad = failed("provisioning", service_id=SID, tenant_id=TID, operation_id=run, step=5, error="e")
    assert c.admit(done) and c.admit(bad) and c.admit(done)
    # Workflow state is gone: the same step/status is a first event again.
    assert c.admit(_p(run, 5, "testing"))


def test_workflows_are_coalesced_independently() -> None:
    clock = Clock()
    c = Coalescer(1.0, clock=clock)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert c.admit(_p(a, 3, "retrying")) and c.admit(_p(b, 3, "retrying"))
    assert not c.admit(_p(a, 3, "retrying")) and not c.admit(_p(b, 3, "retrying"))


def test_state_is_bounded() -> None:
    clock = Clock()
    c = Coalescer(1.0, clock=clock, max_workflows=2)
    runs = [str(uuid.uuid4()) for _ in range(3)]
    for run in runs:
        assert c.admit(_p(run, 1, "validating"))
    # The oldest workflow was forgotten, so its chatty event counts as a first one.
    assert c.admit(_p(runs[0], 1, "validating"))
    assert not c.admit(_p(runs[2], 1, "validating"))


def test_coalesced_events_are_never_stored(engine: Engine) -> None:
    clock, run = Clock(), str(uuid.uuid4())
    pub = EventPublisher(engine, None, coalescer=Coalescer(1.0, clock=clock))
    first = pub.publish(_p(run, 3, "configuring"))
    assert pub.publish(_p(run, 3, "retrying")) is None
    done = pub.publish(completed("provisioning", service_id=SID, tenant_id=TID, operation_id=run))
    assert isinstance(first, int) and isinstance(done, int) and done > first
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(EventLog)) == 2
