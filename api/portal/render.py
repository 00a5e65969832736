"""HTML of the portal pages: package templates filled with escaped values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib.resources import files
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from fiberflow.core import catalogue
from fiberflow.core.db.models import ServiceInstance, ServiceStatus
from fiberflow.core.tokens import Principal

STATUS_LABELS: dict[str, str] = {
    ServiceStatus.PENDING: "Pending",
    ServiceStatus.AWAITING_ONT: "Waiting for your fibre box to be connected",
    ServiceStatus.PROVISIONING: "Provisioning…",
    ServiceStatus.ACTIVE: "Active",
    ServiceStatus.SUSPENDING: "Suspending…",
    ServiceStatus.SUSPENDED: "Suspended",
    ServiceStatus.RESUMING: "Resuming…",
    ServiceStatus.TERMINATING: "Terminating…",
    ServiceStatus.TERMINATED: "Terminated",
    ServiceStatus.REPROVISIONING: "Reprovisioning…",
    ServiceStatus.CHANGING_PLAN: "Changing plan…",
    ServiceStatus.REPLACING_ONT: "Replacing your fibre box…",
    ServiceStatus.FAILED: "Failed",
}
# A zero-touch order without a serial learns it when its ONT is connected.
NO_SERIAL = "known once your fibre box is connected"
OPERATION_TITLES: dict[str, str] = {op.value: e.title for op, e in catalogue.OPERATIONS.items()}
# Statuses in which the last operation ended well: the bar starts full.
SETTLED = frozenset({ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED, ServiceStatus.TERMINATED})

# Only our own files; no inline script or style (the page sets the bar width through
# the CSSOM, which style-src does not govern).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@cache
def _template(name: str) -> Template:
    return Template(
        files("fiberflow.api.portal.templates").joinpath(name).read_text(encoding="utf-8")
    )


def fill(name: str, raw: dict[str, str] | None = None, **values: object) -> str:
    """The template with every ``values`` entry HTML-escaped; ``raw`` is trusted HTML."""
    escaped = {k: escape("" if v is None else str(v)) for k, v in values.items()}
    return _template(name).substitute(escaped, **(raw or {}))


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def status_label(row: ServiceInstance) -> str:
    label = STATUS_LABELS.get(row.status, row.status)
    if row.status == ServiceStatus.FAILED and row.error:
        return f"{label}: {row.error}"
    return label


def _account(request: Request, principal: Principal | None) -> str:
    if principal is None:
        return ""
    who = principal.sub if not principal.is_operator else f"{principal.sub} (operator)"
    return fill("account.html", base=base_path(request), who=who)


def page(
    request: Request,
    title: str,
    body: str,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
    main_attrs: dict[str, str] | None = None,
) -> HTMLResponse:
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in (main_attrs or {}).items())
    html = fill(
        "layout.html",
        raw={"body": body, "account": _account(request, principal), "main_attrs": attrs},
        title=title,
        base=base_path(request),
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def message_page(
    request: Request, status_code: int, heading: str, message: str, detail: str | None = None
) -> HTMLResponse:
    extra = f'<p class="muted" data-testid="detail">{escape(detail)}</p>' if detail else ""
    body = fill("message.html", raw={"detail": extra}, heading=heading, message=message)
    return page(request, heading, body, status_code=status_code)


def services_page(
    request: Request, principal: Principal, rows: list[ServiceInstance]
) -> HTMLResponse:
    base = base_path(request)
    items = "\n".join(
        fill(
            "service_item.html",
            base=base,
            id=row.id,
            plan=row.plan,
            customer=f"{row.customer_ref} · " if principal.is_operator else "",
            olt=row.olt,
            pon_port=row.pon_port,
            ont_serial=row.ont_serial or NO_SERIAL,
            status=row.status,
            status_label=status_label(row),
        )
        for row in rows
    )
    if not rows:
        summary = "You have no services yet."
    elif len(rows) == 1:
        summary = "One service. Open it to follow its progress live."
    else:
        summary = f"{len(rows)} services. Open one to follow its progress live."
    body = fill("services.html", raw={"items": items}, summary=summary)
    return page(request, "Your services", body, principal=principal)


def _plans_json() -> str:
    plans: dict[str, list[dict[str, Any]]] = {
        op.value: [
            {"step": s.number, "status": s.status, "message": s.message}
            for s in entry.steps.values()
        ]
        for op, entry in catalogue.OPERATIONS.items()
    }
    # Inside <script type="application/json">: no "</script>" can close it early.
    return json.dumps(plans, separators=(",", ":")).replace("<", "\\u003c")


def _operations_json() -> str:
    """The catalogue as the page's script reads it (static/progress.js ``configure``):
    each operation's title and labels, where it ends and whether a failure restores the
    service, every status label, the transitional statuses."""
    operations = {
        op.value: {
            "title": entry.title,
            "running": STATUS_LABELS.get(entry.running, entry.running.value),
            "done": STATUS_LABELS.get(entry.ends_in) if entry.ends_in is not None else None,
            "ends_in": entry.ends_in.value if entry.ends_in is not None else None,
            "starts_from": sorted(s.value for s in entry.starts_from),
            "restores_on_failure": entry.restores_on_failure,
        }
        for op, entry in catalogue.OPERATIONS.items()
    }
    data = {
        "operations": operations,
        "statuses": {str(k): v for k, v in STATUS_LABELS.items()},
        "transitional": sorted(s.value for s in catalogue.TRANSITIONAL),
    }
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def _iso(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def service_page(request: Request, principal: Principal, row: ServiceInstance) -> HTMLResponse:
    base = base_path(request)
    operation = row.current_operation or "provisioning"
    percent = 100 if row.status in SETTLED else 0
    updated = _iso(row.updated_at)
    body = fill(
        "service.html",
        raw={"plans": _plans_json(), "operations": _operations_json()},
        base=base,
        plan=row.plan,
        customer_ref=row.customer_ref,
        olt=row.olt,
        pon_port=row.pon_port,
        ont_serial=row.ont_serial or NO_SERIAL,
        ip_address=row.ip_address or "not assigned yet",
        op_title=OPERATION_TITLES.get(operation, operation.title()),
        status=row.status,
        status_label=status_label(row),
        percent=percent,
        updated_iso=updated,
        updated_text=updated.replace("T", " ")[:19] + " UTC",
    )
    attrs = {
        "data-service-id": row.id,
        "data-status": row.status,
        "data-operation": operation,
        "data-error": row.error or "",
        "data-updated": updated,
        "data-sse-url": f"{base}/api/v1/realtime/service-lifecycle/{row.id}",
        "data-events-url": f"{base}/api/v1/services/{row.id}/events",
        "data-service-url": f"{base}/api/v1/services/{row.id}",
    }
    title = f"Fibre {row.plan} — progress"
    return page(request, title, body, principal=principal, main_attrs=attrs)
