"""The load benchmark's checks: every listener against its service's history (each id
from its start point on, exactly once, in order), and every workflow against its
completed event and its service's final status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.lifecycle_load import Run
from bench.load_arrivals import RESULT
from bench.load_listeners import Listener, event_time

#: an event stamped this long after a connection was ready must reach it (see check)
CONNECT_TOLERANCE_S = 2.0


@dataclass
class Verdict:
    """One listener against its service's history."""

    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unknown: int = 0  # ids not in the service's history
    #: a connection without Last-Event-ID started mid-operation (lost its start)
    bad_start: bool = False


def operation_keys(events: list[dict[str, Any]]) -> dict[int, str | None]:
    """Each event's operation, by id: its ``flow_run_id``; the API's ``queued`` step 1
    (published before the run had an id, ``flow_run_id`` null) belongs to the run whose
    events follow it."""
    keys: dict[int, str | None] = {}
    waiting: list[int] = []
    for e in sorted(events, key=lambda e: e["id"]):
        run = e["data"].get("flow_run_id")
        if run is None and e["data"].get("status") == "queued":
            waiting.append(e["id"])
            continue
        for queued in waiting:
            keys[queued] = run
        waiting.clear()
        keys[e["id"]] = run
    for queued in waiting:  # announced, its run not started yet
        keys[queued] = f"queued-{queued}"
    return keys


def check_listener(lst: Listener, events: list[dict[str, Any]]) -> Verdict:
    """Every id from the listener's start point on, exactly once and in order.

    The start point is its first id, which must be the first event of its operation
    (a connection without ``Last-Event-ID`` gets the service's latest operation from
    its start). Events stamped more than CONNECT_TOLERANCE_S after its first connection
    was ready are required as well (so a catch-up that began at a later operation than
    the one running at connect time counts what it skipped as lost)."""
    v = Verdict(delivered=len(lst.ids), duplicates=len(lst.ids) - len(set(lst.ids)))
    v.out_of_order = sum(b < a for a, b in zip(lst.ids, lst.ids[1:], strict=False))
    known = {e["id"] for e in events}
    v.unknown = len(set(lst.ids) - known)
    ready = next((c.ready for c in lst.connections if c.ready is not None), None)
    required: set[int] = set()
    if lst.ids:
        start = lst.ids[0]
        ops = operation_keys(events)
        op = ops.get(start)
        first_of_op = min((i for i, key in ops.items() if key == op), default=start)
        v.bad_start = first_of_op != start
        required |= {e["id"] for e in events if e["id"] >= first_of_op}
    if ready is not None:
        late = ready + CONNECT_TOLERANCE_S
        required |= {e["id"] for e in events if (event_time(e["data"]) or 0) > late}
    v.lost = len(required - set(lst.ids))
    return v


def expected_status(runs: list[Run]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in runs:  # in arrival order: the last run of a service decides
        if r.service_id and r.status == 202:
            out[r.service_id] = RESULT[r.operation] if r.outcome == "completed" else r.outcome
    return out


def workflow_errors(
    runs: list[Run], histories: dict[str, list[dict[str, Any]]], final_status: dict[str, str]
) -> list[str]:
    """Everything that went wrong with a workflow (a 409 is listed as well)."""
    errors = []
    for r in runs:
        what = f"{r.operation} {r.service_id or r.body.get('ont_serial')}"
        if r.status != 202:
            errors.append(f"{what}: POST answered {r.status}: {r.error}")
        elif r.outcome != "completed":
            errors.append(f"{what}: {r.outcome} ({r.error or 'no error text'})")
        else:
            done = f"service.{r.operation}.completed"
            h = histories.get(r.service_id or "", [])
            if not any(
                e["event_type"] == done and e["data"].get("flow_run_id") == r.flow_run_id for e in h
            ):
                errors.append(f"{what}: no {done} event with its flow_run_id in the history")
    for sid, want in expected_status(runs).items():
        got = final_status.get(sid)
        if got != want:
            errors.append(f"service {sid}: status {got}, expected {want}")
    return errors
