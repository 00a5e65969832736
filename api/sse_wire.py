"""The SSE wire format of the relay's messages, as sse-starlette's public
``ServerSentEvent`` encodes it: ``id:`` (the event log id), ``event:`` (the event
type), ``data:`` (compact JSON) and ping comments."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sse_starlette import ServerSentEvent

from fiberflow.events.record import EventRecord


def ping_bytes(sep: str) -> bytes:
    """A heartbeat comment (``: ping - <now>``): keeps proxies from closing an idle
    stream; clients ignore it."""
    return ServerSentEvent(comment=f"ping - {datetime.now(UTC)}", sep=sep).encode()


class WireCache:
    """Each event's SSE bytes, built once and sent to every stream of its service
    (encoding is ~6 µs; at 100 streams per service that was most of a delivery's own
    cost). Bounded: the newest ``size`` events; catch-up of older ones re-encodes."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._bytes: dict[tuple[int, str], tuple[EventRecord, bytes]] = {}

    def get(self, record: EventRecord, sep: str) -> bytes:
        key = (record.id, sep)
        hit = self._bytes.get(key)
        # An id reused for another event (a restored database, a reset sequence) must
        # never get the old event's bytes: the record itself is compared too.
        if hit is not None and hit[0] == record:
            return hit[1]
        encoded = ServerSentEvent(
            data=json.dumps(record.data, separators=(",", ":")),
            event=record.event_type,
            id=str(record.id),
            sep=sep,
        ).encode()
        if len(self._bytes) >= self.size:
            # dicts keep insertion order: drop the oldest quarter at once
            for old in list(self._bytes)[: self.size // 4]:
                del self._bytes[old]
        self._bytes[key] = (record, encoded)
        return encoded


wire = WireCache()
