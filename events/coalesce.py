"""Coalescing of chatty progress events, applied before an event is stored.

Rule (issue 5): chatty progress within one step — retries, "waiting for the ONT"
polls — reaches the log at most once per ``interval`` seconds per workflow
(one operation run). Never dropped or delayed: the first event of a workflow, a
new step number, a new status within the step (except to ``retrying``), every
notice (``rolled_back``, ``failed``, ``crashed`` ...), and terminal (completed /
failed) events.

Dropping happens at the leading edge: a chatty event inside the window is
discarded, not held back, so nothing is ever delayed. Because the decision is
taken before the event is stored, the history endpoint and the stream agree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fiberflow.events.schema import LifecycleEvent, ProgressEvent

logger = logging.getLogger(__name__)

# Statuses that are chatty by nature: even a change *to* them within a step is throttled.
CHATTY_STATUSES = frozenset({"retrying", "waiting"})
# Notices that are never coalesced, even repeated within one step (two compensations
# of step 3 are two notices) — they report what was done, not that time passes.
NEVER_COALESCED_STATUSES = frozenset({"rolled_back", "compensating", "failed", "crashed"})


@dataclass(slots=True)
class _Last:
    step: int
    status: str
    at: float


class Coalescer:
    """Decides, per workflow, whether a progress event is worth storing.

    Thread-safe (Prefect hooks of concurrent flows share one publisher). Keeps
    state for at most ``max_workflows`` open workflows (least recently used go).
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_workflows: int = 10_000,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._max = max_workflows
        self._last: OrderedDict[str, _Last] = OrderedDict()
        self._lock = threading.Lock()
        self.dropped = 0

    def admit(self, event: LifecycleEvent) -> bool:
        """True when ``event`` must be stored; False when it is coalesced away."""
        key = event.operation_id
        payload = event.payload
        with self._lock:
            if not isinstance(payload, ProgressEvent):
                # Terminal: always stored; the workflow is over, forget it.
                self._last.pop(key, None)
                return True
            now = self._clock()
            last = self._last.get(key)
            if last is not None and self._chatty(last, payload) and now - last.at < self.interval:
                self.dropped += 1
                logger.debug(
                    "coalesced progress event",
                    extra={
                        "operation_id": key,
                        "service_id": event.service_id,
                        "step": payload.step,
                        "status": payload.status,
                    },
                )
                return False
            self._last[key] = _Last(payload.step, payload.status, now)
            self._last.move_to_end(key)
            while len(self._last) > self._max:
                self._last.popitem(last=False)
            return True

    @staticmethod
    def _chatty(last: _Last, payload: ProgressEvent) -> bool:
        if payload.step != last.step or payload.status in NEVER_COALESCED_STATUSES:
            return False  # step transition
        return payload.status == last.status or payload.status in CHATTY_STATUSES
