from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fiberflow.events.history import events_for, history
from fiberflow.events.publisher import EventPublisher
from tests.events.helpers import Workflow


def _publish_two_operations(engine: Engine) -> tuple[list[int], list[int], Workflow]:
    pub = EventPublisher(engine, None)
    first = Workflow()
    second = first.next_operation("suspension")
    noise = Workflow()
    old = [pub.publish(first.step(1)), pub.publish(first.step(2))]
    pub.publish(noise.step(1))
    old.append(pub.publish(first.done()))
    new = [pub.publish(second.step(1))]
    pub.publish(noise.step(2))
    new.append(pub.publish(second.step(2)))
    assert None not in old + new
    return [i for i in old if i], [i for i in new if i], first


def test_without_last_event_id_the_latest_operation(engine: Engine) -> None:
    old, new, wf = _publish_two_operations(engine)
    with Session(engine) as s:
        got = events_for(s, wf.service_id, None)
    assert [e.id for e in got] == new
    assert {e.event_type for e in got} == {"service.suspension.progress"}
    assert all(e.service_id == wf.service_id for e in got)


def test_with_last_event_id_everything_later_across_operations(engine: Engine) -> None:
    old, new, wf = _publish_two_operations(engine)
    with Session(engine) as s:
        assert [e.id for e in events_for(s, wf.service_id, old[0])] == old[1:] + new
        assert [e.id for e in events_for(s, wf.service_id, 0)] == old + new
        assert events_for(s, wf.service_id, new[-1]) == []


def test_unknown_service_has_no_events(engine: Engine) -> None:
    _publish_two_operations(engine)
    with Session(engine) as s:
        assert events_for(s, Workflow().service_id, None) == []
        assert history(s, Workflow().service_id) == []


def test_history_is_the_full_log_in_pages(engine: Engine) -> None:
    old, new, wf = _publish_two_operations(engine)
    with Session(engine) as s:
        assert [e.id for e in history(s, wf.service_id)] == old + new
        page = history(s, wf.service_id, limit=2)
        rest = history(s, wf.service_id, after=page[-1].id, limit=100)
    assert [e.id for e in page + rest] == old + new
    assert page[0].api_item() == {
        "id": old[0],
        "event_type": "service.provisioning.progress",
        "data": page[0].data,
    }
