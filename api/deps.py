"""Annotated dependencies: settings, database session, the authenticated principal.

The ones that do no blocking I/O are ``async def``: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request (and, with many
SSE connections opening, dozens of pool threads) for work that takes microseconds.
The database session stays sync: it is the one that blocks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fiberflow.api.csrf import CSRF_HEADER, csrf_ok
from fiberflow.api.state import AppState
from fiberflow.core.settings import Settings
from fiberflow.core.tokens import Principal, TokenError, verify

SESSION_COOKIE = "fiberflow_session"
SAFE_METHODS = frozenset({"GET", "HEAD"})


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.fiberflow
    return state


async def get_state(request: Request) -> AppState:
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(state: StateDep) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _bearer(request: Request, key: str) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "Authorization header must be 'Bearer <JWT>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return token.strip()
    # The portal's cookie authenticates reads. A state-changing request must carry
    # the header, which no other site can make a browser send (no CSRF, whatever the
    # cookie's SameSite covers: other ports of the same host are "same site") - or the
    # cookie plus the session's CSRF token in X-CSRF-Token (api/csrf.py), which only
    # the portal's own pages know (the operator page's approve/reject buttons).
    cookie = request.cookies.get(SESSION_COOKIE)
    if request.method in SAFE_METHODS:
        return cookie
    if cookie and csrf_ok(key, cookie, request.headers.get(CSRF_HEADER)):
        return cookie
    return None


# Declared for the OpenAPI schema (security schemes), never raising: _bearer() decides.
_BEARER_SCHEME = HTTPBearer(
    auto_error=False, description="JWT (HS256) with sub, tenant_id (UUID), role and exp"
)
_COOKIE_SCHEME = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The portal's session (reads; changes with X-CSRF-Token)",
)


def authenticate(request: Request, state: AppState) -> Principal:
    """The request's principal (Bearer header, or the portal cookie on reads and, with
    its CSRF token, on changes), or 401."""
    token = _bearer(request, state.jwt_key)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: a Bearer token (the session cookie only on GET)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return verify(state.jwt_key, token)
    except TokenError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


async def get_principal(
    request: Request,
    state: StateDep,
    _bearer_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)] = None,
    _cookie_scheme: Annotated[str | None, Depends(_COOKIE_SCHEME)] = None,
) -> Principal:
    return authenticate(request, state)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def check_operator(principal: Principal) -> Principal:
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route needs the operator role")
    return principal


async def require_operator(principal: PrincipalDep) -> Principal:
    return check_operator(principal)


OperatorDep = Annotated[Principal, Depends(require_operator)]
