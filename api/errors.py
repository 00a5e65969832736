"""Every error answers JSON ``{"detail": ...}`` whose message names the field or reason.

FastAPI reads and decodes a JSON body *before* it runs a route's dependencies, so a
malformed body would answer 422 (or 400) ahead of the route's authentication. DESIGN.md
wants 401 / 403 first: for those early body errors the route's auth dependencies are run
here before the body error is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from fiberflow.api.deps import (
    app_state,
    authenticate,
    check_operator,
    get_principal,
    require_operator,
)

log = logging.getLogger(__name__)

_SOURCES = ("body", "query", "path", "header", "cookie")
_AUTH_CALLS: tuple[Callable[..., Any], ...] = (get_principal, require_operator)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # Only the leading source is dropped: a body field may itself be called "query".
    parts = [str(p) for p in loc]
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _describe(error: dict[str, Any]) -> dict[str, str]:
    if error.get("type") == "json_invalid":
        # loc is ("body", <character offset>): the field is the body itself.
        pos = (error.get("loc") or ("body", "?"))[-1]
        reason = (error.get("ctx") or {}).get("error", "JSON decode error")
        return {"field": "body", "message": f"invalid JSON at character {pos}: {reason}"}
    return {"field": _field(error.get("loc", ())), "message": str(error.get("msg", "invalid"))}


def _auth_calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    for dep in dependant.dependencies:
        if dep.call in _AUTH_CALLS:
            found.add(dep.call)
        found |= _auth_calls(dep)
    return found


def _authorize_first(request: Request) -> HTTPException | None:
    """The 401/403 the route's dependencies would have raised, or None."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    calls = _auth_calls(route.dependant)
    if not calls:
        return None
    try:
        principal = authenticate(request, app_state(request))
        if require_operator in calls:
            check_operator(principal)
    except HTTPException as exc:
        return exc
    return None


def _body_error(message: str) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"detail": f"body: {message}", "errors": [{"field": "body", "message": message}]},
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        denied = _authorize_first(request)
        if denied is not None:
            return await http_exception_handler(request, denied)
    errors = [_describe(e) for e in raw]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": summary, "errors": errors})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # FastAPI answers 400 "There was an error parsing the body" (raised from the parser's
    # exception) when a JSON body is not UTF-8 or nests too deeply, again before it
    # authenticates. Route code never raises 400.
    if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
        denied = _authorize_first(request)
        if denied is not None:
            return await http_exception_handler(request, denied)
        return _body_error("cannot be parsed as JSON (not UTF-8, or nested too deeply)")
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
