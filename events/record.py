"""A stored event as it travels: one EventLog row, one Redis stream entry, one SSE message.

Redis layout: ONE global stream ``<prefix>events`` for every service, trimmed by
time (``XADD ... MINID ~ now - retention``). Each entry's fields are the event's
log id, service_id, tenant_id, operation_id, event_type and the JSON ``data``.
The SSE ``id:`` and the history endpoint's ``id`` are the log id, never the
Redis entry id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fiberflow.core.db.models import EventLog

DEFAULT_PREFIX = "fiberflow:"


def stream_key(prefix: str) -> str:
    return f"{prefix}events"


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    service_id: str
    tenant_id: str
    operation_id: str | None
    event_type: str
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: EventLog) -> EventRecord:
        return cls(
            id=row.id,
            service_id=row.service_id,
            tenant_id=row.tenant_id,
            operation_id=row.operation_id,
            event_type=row.event_type,
            data=dict(row.data),
        )

    def to_fields(self) -> dict[str, str]:
        """Redis stream entry fields."""
        return {
            "id": str(self.id),
            "service_id": self.service_id,
            "tenant_id": self.tenant_id,
            "operation_id": self.operation_id or "",
            "event_type": self.event_type,
            "data": json.dumps(self.data, separators=(",", ":")),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[bytes | str, bytes | str]) -> EventRecord:
        """Decode a stream entry; raises ValueError (or KeyError) when malformed."""
        f = {_text(k): _text(v) for k, v in fields.items()}
        data = json.loads(f["data"])
        if not isinstance(data, dict):
            raise ValueError("event data is not a JSON object")
        return cls(
            id=int(f["id"]),
            service_id=f["service_id"],
            tenant_id=f["tenant_id"],
            operation_id=f.get("operation_id") or None,
            event_type=f["event_type"],
            data=data,
        )

    def api_item(self) -> dict[str, Any]:
        """The history endpoint's item: ``{id, event_type, data}``."""
        return {"id": self.id, "event_type": self.event_type, "data": self.data}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
