"""``/portal``: sign-in by link, the service list, the progress page, the operator's
bulk run page and the assets.

Pages answer HTML, errors included (401 with a sign-in hint, 404 for a service
the principal may not see, exactly like the REST API's isolation).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from fiberflow.api.access import get_visible_service, visible
from fiberflow.api.bulk_visibility import get_tenant_bulk
from fiberflow.api.deps import StateDep, authenticate
from fiberflow.api.portal import assets, render
from fiberflow.api.portal.bulk_page import bulk_page
from fiberflow.api.portal.session import clear_session_cookie, set_session_cookie, sign_in
from fiberflow.core import bulk as core_bulk
from fiberflow.core.db.models import ServiceInstance
from fiberflow.core.tokens import Principal, TokenError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

LIST_LIMIT = 200
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class _PageError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _principal(request: Request, state: StateDep) -> Principal:
    try:
        return authenticate(request, state)
    except HTTPException as exc:
        raise _PageError(
            render.message_page(
                request,
                status.HTTP_401_UNAUTHORIZED,
                "Please sign in",
                "Open the sign-in link you were given to see your services.",
                str(exc.detail),
            )
        ) from None


@router.get("", response_class=RedirectResponse)
def portal_home(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{render.base_path(request)}/portal/services", status_code=303)


@router.get("/login")
def login(
    request: Request,
    state: StateDep,
    token: Annotated[str | None, Query(max_length=4096)] = None,
) -> Response:
    """Exchange a sign-in link's JWT for the session cookie, then go to the services."""
    if not token:
        return render.message_page(
            request, 401, "Sign-in link incomplete", "This link has no token. Ask for a new one."
        )
    try:
        signed = sign_in(state.jwt_key, token)
    except TokenError as exc:
        log.info("portal sign-in refused", extra={"reason": str(exc)})
        return render.message_page(
            request,
            status.HTTP_401_UNAUTHORIZED,
            "Sign-in link not valid",
            "This sign-in link is invalid or has expired. Ask for a new link.",
            str(exc),
        )
    log.info(
        "portal sign-in",
        extra={"tenant_id": signed.principal.tenant_id, "role": signed.principal.role},
    )
    response = RedirectResponse(
        f"{render.base_path(request)}/portal/services", status_code=303, headers=NO_STORE
    )
    set_session_cookie(response, request, token, signed.max_age)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = render.message_page(
        request, 200, "Signed out", "You are signed out. Open your sign-in link to come back."
    )
    clear_session_cookie(response, request)
    return response


@router.get("/services")
def services(request: Request, state: StateDep) -> Response:
    try:
        principal = _principal(request, state)
    except _PageError as err:
        return err.response
    query = visible(select(ServiceInstance), principal)
    query = query.order_by(ServiceInstance.created_at.desc(), ServiceInstance.id.desc())
    with state.sessions() as session:
        rows: list[ServiceInstance] = list(session.scalars(query.limit(LIST_LIMIT)))
    return render.services_page(request, principal, rows)


@router.get("/services/{service_id}")
def service_progress(service_id: str, request: Request, state: StateDep) -> Response:
    try:
        principal = _principal(request, state)
    except _PageError as err:
        return err.response
    with state.sessions() as session:
        try:
            row = get_visible_service(session, principal, service_id)
        except HTTPException:
            return render.message_page(
                request,
                status.HTTP_404_NOT_FOUND,
                "Service not found",
                "There is no such service in your account.",
            )
        return render.service_page(request, principal, row)


@router.get("/bulk/{bulk_id}")
def bulk_progress(bulk_id: str, request: Request, state: StateDep) -> Response:
    """A bulk run's live progress, for the operators of its tenant."""
    try:
        principal = _principal(request, state)
    except _PageError as err:
        return err.response
    if not principal.is_operator:
        return render.message_page(
            request,
            status.HTTP_403_FORBIDDEN,
            "Operators only",
            "Bulk runs are shown to your provider's operators only.",
        )
    with state.sessions() as session:
        try:
            row = get_tenant_bulk(session, principal, bulk_id)
        except HTTPException:
            return render.message_page(
                request,
                status.HTTP_404_NOT_FOUND,
                "Bulk run not found",
                "There is no such bulk run in your organisation.",
            )
        counts = core_bulk.counts(session, row.id)
        return bulk_page(request, principal, row, counts, state.jwt_key)


@router.get("/static/{name}")
def static(name: str, request: Request) -> Response:
    asset = assets.get(name)
    if asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
