"""An operation that ends in "the status it started from" (ONT replacement): the model
remembers where it began, finishes there, and a compensated failure returns there."""

from __future__ import annotations

import pytest

from fiberflow.core import catalogue
from fiberflow.core.db.models import InvalidTransition, Operation, ServiceInstance, ServiceStatus

OP = Operation.ONT_REPLACEMENT


@pytest.mark.parametrize("start", [ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED])
def test_replacement_ends_and_fails_back_where_it_started(start: ServiceStatus) -> None:
    assert catalogue.ONT_REPLACEMENT.ends_in is None
    assert catalogue.ONT_REPLACEMENT.end_status(start) is start
    done = ServiceInstance(status=start.value)
    done.begin(OP)
    assert (done.status, done.status_before) == ("replacing_ont", start.value)
    done.finish(OP)
    assert done.status == start.value

    failed = ServiceInstance(status=start.value)
    failed.begin(OP)
    failed.restore("ONT replacement failed: too little light")
    assert (failed.status, failed.error) == (
        start.value,
        "ONT replacement failed: too little light",
    )


def test_no_status_to_return_to_is_refused() -> None:
    # A row put in replacing_ont by hand, never through begin(): nowhere to end.
    row = ServiceInstance(status=ServiceStatus.REPLACING_ONT.value)
    with pytest.raises(InvalidTransition):
        row.finish(OP)
    with pytest.raises(InvalidTransition):
        row.restore("x")
    with pytest.raises(InvalidTransition):  # not mid-operation
        ServiceInstance(status="active", status_before="suspended").restore("x")


def test_other_operations_keep_their_fixed_end() -> None:
    row = ServiceInstance(status=ServiceStatus.ACTIVE.value)
    row.begin(Operation.SUSPENSION)
    row.finish(Operation.SUSPENSION)
    assert (row.status, row.status_before) == ("suspended", "active")
