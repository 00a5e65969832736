"""HTML of the operator's bulk run page (``GET /portal/bulk/{id}``).

The server renders what the database says now (status, counts, who asked); the page's
script (static/bulk.js) then replays the bulk's events over SSE, which also builds
the failed and skipped lists, and follows it live. The approve / reject buttons are
rendered only for an operator other than the requester, shown only while the run
awaits approval and nobody decided yet; they POST with the session cookie and the
session's CSRF token (api/csrf.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse

from fiberflow.api.csrf import csrf_token
from fiberflow.api.deps import SESSION_COOKIE
from fiberflow.api.portal.render import base_path, fill, page
from fiberflow.core.db.models import BulkRun
from fiberflow.core.tokens import Principal
from fiberflow.events.bulk_schema import TERMINAL_ITEM_STATES

BULK_STATUS_LABELS: dict[str, str] = {
    "scheduled": "Scheduled",
    "awaiting_approval": "Awaiting approval",
    "running": "Running…",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "rejected": "Rejected",
    "failed": "Failed",
}
OPERATION_TITLES: dict[str, str] = {
    "suspend": "Suspend",
    "resume": "Resume",
    "terminate": "Terminate",
    "change-plan": "Change plan",
    "reprovision": "Reprovision",
}
AWAITING = "awaiting_approval"


def percent_done(counts: dict[str, int], status: str) -> int:
    """Items in a terminal state, as a whole percentage (an empty run that ended: 100)."""
    total = sum(counts.values())
    if total == 0:
        return 100 if status in ("completed", "cancelled", "rejected", "failed") else 0
    done = sum(n for state, n in counts.items() if state in TERMINAL_ITEM_STATES)
    return round(done * 100 / total)


def _iso(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _labels_json() -> str:
    data = {"statuses": BULK_STATUS_LABELS, "operations": OPERATION_TITLES}
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def bulk_page(
    request: Request, principal: Principal, row: BulkRun, counts: dict[str, int], jwt_key: str
) -> HTMLResponse:
    base = base_path(request)
    decided = row.approved_by is not None or row.rejected_by is not None
    # Four-eyes: the requester never gets the buttons (the API refuses them anyway).
    can_decide = principal.sub != row.requested_by
    hidden = "" if row.status == AWAITING and not decided else " hidden"
    decision = fill("bulk_decision.html", raw={"hidden": hidden}) if can_decide else ""
    pct = percent_done(counts, row.status)
    created = _iso(row.created_at)
    title = OPERATION_TITLES.get(row.operation, row.operation)
    body = fill(
        "bulk.html",
        raw={"decision": decision, "labels": _labels_json()},
        base=base,
        title=title,
        bulk_id=row.id,
        requested_by=row.requested_by,
        created_iso=created,
        created_text=created.replace("T", " ")[:19] + " UTC",
        status=row.status,
        status_label=BULK_STATUS_LABELS.get(row.status, row.status),
        percent=pct,
        done=sum(n for s, n in counts.items() if s in TERMINAL_ITEM_STATES),
        total=sum(counts.values()),
        **{f"n_{state}": n for state, n in counts.items()},
    )
    cookie = request.cookies.get(SESSION_COOKIE)
    attrs = {
        "data-bulk-id": row.id,
        "data-status": row.status,
        "data-can-decide": "true" if can_decide else "false",
        "data-decided": "true" if decided else "false",
        "data-sse-url": f"{base}/api/v1/realtime/bulk/{row.id}",
        "data-bulk-url": f"{base}/api/v1/bulk/{row.id}",
        "data-services-url": f"{base}/portal/services",
        # Only for a cookie session: a page fetched with a Bearer header has no cookie
        # for the buttons to use.
        "data-csrf": csrf_token(jwt_key, cookie) if cookie else "",
    }
    return page(request, f"Bulk {title.lower()} — progress", body, principal=principal,
                main_attrs=attrs)  # fmt: skip
