"""Follow one service's lifecycle over the SSE relay and draw it as a rich progress bar.

The same stream the portal page reads (``GET /api/v1/realtime/service-lifecycle/{id}``):
a dropped connection is resumed with ``Last-Event-ID`` (every later event exactly
once), ids already seen are dropped. Progress = steps finished: step ``n`` of ``N``
running is ``n - 1`` of ``N``; the last step (``completed``) and the ``completed``
event are the whole bar.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from fiberflow.core.catalogue import QUEUED_STATUS

log = logging.getLogger(__name__)

STREAM = "/api/v1/realtime/service-lifecycle/{}"
NOTICES = frozenset({"retrying", "failed", "rolled_back", "crashed"})
# Above the relay's heartbeat (15 s by default): a silent connection is a dead one.
READ_TIMEOUT = 45.0


class FollowTimeout(Exception):
    """The operation did not end within the time given."""


@dataclass(frozen=True, slots=True)
class SseMessage:
    id: int | None
    event: str
    data: dict[str, Any]


@dataclass
class Outcome:
    """How the followed operation ended: ``completed`` or ``failed`` (with the error)."""

    kind: str
    operation: str
    error: str | None = None
    last_id: int | None = None
    steps: list[tuple[int, str, float]] = field(default_factory=list)  # (n, status, seconds)

    @property
    def ok(self) -> bool:
        return self.kind == "completed"


def iter_messages(events: Iterable[ServerSentEvent]) -> Iterator[SseMessage]:
    """The relay's messages among SSE events: those whose data is a JSON object."""
    for sse in events:
        try:
            data = json.loads(sse.data)
        except ValueError:
            continue
        if isinstance(data, dict):
            yield SseMessage(int(sse.id) if sse.id.isdigit() else None, sse.event, data)


class ProgressView:
    """One rich bar per operation; a line per finished step, notice and outcome."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.task: TaskID | None = None
        self.operation: str | None = None
        self.current: tuple[int, str, float] | None = None  # (step, status, started)
        self.steps: list[tuple[int, str, float]] = []
        self.total = 1

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def _task(self, operation: str, total: int) -> TaskID:
        if self.task is None or operation != self.operation:
            self.operation = operation
            self.task = self.progress.add_task(operation.title(), total=total)
            self.current, self.steps = None, []
        return self.task

    def _close_step(self, at: float, mark: str = "[green]✓[/]") -> None:
        if self.current is not None:
            n, status, started = self.current
            took = max(0.0, at - started)
            self.steps.append((n, status, took))
            self.progress.console.print(f"  {mark} step {n} {status} [dim]({took:.1f} s)[/]")
            self.current = None

    def handle(self, operation: str, kind: str, data: dict[str, Any]) -> Outcome | None:
        now = time.monotonic()
        if kind == "progress":
            total = self.total = int(data.get("total_steps") or 1)
            task = self._task(operation, total)
            step, status = int(data.get("step") or 0), str(data.get("status"))
            message = str(data.get("message", ""))
            if status in NOTICES:
                colour = "red" if status in ("failed", "crashed") else "yellow"
                label = status.replace("_", " ")
                self.progress.console.print(f"  [{colour}]↻ {label}:[/] {message}")
                return None
            if self.current is None or step > self.current[0]:
                self._close_step(now)
                self.current = (step, status, now)
            elif self.current[1] == QUEUED_STATUS:
                # The run's own step 1 after the API's announcement: the same step (its
                # time counts from the request), under the step's real name.
                self.current = (step, status, self.current[2])
            done = float(total if status == "completed" and step >= total else step - 1)
            self.progress.update(
                task, total=total, completed=done,
                description=f"{operation.title()} · step {step}/{total} {message}",
            )  # fmt: skip
            return None
        task = self._task(operation, 1)
        if kind == "completed":
            self._close_step(now)
            self.progress.update(
                task, total=self.total, completed=self.total,
                description=f"{operation.title()} done",
            )  # fmt: skip
            return Outcome("completed", operation, steps=list(self.steps))
        error = str(data.get("error", "failed"))
        self._close_step(now, mark="[red]✗[/]")
        self.progress.update(task, description=f"{operation.title()} [red]failed[/]")
        return Outcome("failed", operation, error=error, steps=list(self.steps))


def follow(
    client: httpx.Client,
    service_id: str,
    view: ProgressView,
    *,
    timeout: float = 600.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Read the service's events until its operation completes or fails.

    Reconnects with backoff after a dropped connection or a server error, resuming
    with ``Last-Event-ID``. Raises FollowTimeout after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last_id: int | None = None
    delay = 0.5
    while not should_stop():
        if time.monotonic() > deadline:
            raise FollowTimeout(f"no outcome within {timeout:.0f} s")
        headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
        try:
            with connect_sse(
                client,
                "GET",
                STREAM.format(service_id),
                headers=headers,
                timeout=httpx.Timeout(10.0, read=READ_TIMEOUT),
            ) as source:
                response = source.response
                if response.status_code in (401, 403, 404):
                    raise httpx.HTTPStatusError(
                        f"event stream answered {response.status_code}",
                        request=response.request,
                        response=response,
                    )
                if response.status_code == 200:
                    delay = 0.5
                    for msg in iter_messages(source.iter_sse()):
                        if msg.id is not None:
                            if last_id is not None and msg.id <= last_id:
                                continue
                            last_id = msg.id
                        parts = msg.event.split(".")
                        if len(parts) != 3 or parts[0] != "service":
                            continue
                        outcome = view.handle(parts[1], parts[2], msg.data)
                        if outcome is not None:
                            outcome.last_id = last_id
                            return outcome
                        if should_stop():
                            break
        except (httpx.TransportError, httpx.StreamError) as exc:
            log.info("event stream dropped; reconnecting", extra={"error": str(exc)})
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
    raise FollowTimeout("stopped")
