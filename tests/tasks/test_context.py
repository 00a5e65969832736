"""A run's context is seen where its flow runs, and nowhere else."""

from __future__ import annotations

import contextvars
import threading
import uuid

from fiberflow.core.db.models import Operation
from fiberflow.tasks.context import RunContext, lookup, register


def _register(run_id: str) -> RunContext:
    return register(str(uuid.uuid4()), str(uuid.uuid4()), Operation.PROVISIONING, run_id)


def test_lookup_finds_the_current_run_only() -> None:
    run_id = str(uuid.uuid4())

    def flow_body() -> None:
        ctx = _register(run_id)
        assert lookup(run_id) is ctx
        assert lookup(uuid.UUID(run_id)) is ctx  # Prefect hands out UUIDs
        assert lookup(str(uuid.uuid4())) is None
        # What Prefect runs from the flow (a submitted task) gets a copy: same context.
        assert contextvars.copy_context().run(lookup, run_id) is ctx

    contextvars.copy_context().run(flow_body)
    assert lookup(run_id) is None  # nothing outlives the run's context


def test_runs_in_other_threads_do_not_see_each_other() -> None:
    seen: dict[str, RunContext | None] = {}
    ids = [str(uuid.uuid4()) for _ in range(2)]
    barrier = threading.Barrier(len(ids))

    def run(run_id: str, other: str) -> None:
        _register(run_id)
        barrier.wait()
        seen[run_id] = lookup(other)

    threads = [threading.Thread(target=run, args=(a, b)) for a, b in (ids, ids[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {ids[0]: None, ids[1]: None}
