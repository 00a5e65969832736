"""The portal session: the signed JWT itself, kept in an HttpOnly, SameSite=Lax cookie.

The cookie is what ``api.deps.get_principal`` reads when no ``Authorization``
header is sent, so the same cookie authorizes the page, the REST calls and the
SSE relay (same origin: ``EventSource`` sends it, the token never enters a URL
after the sign-in link). It lives no longer than the token. A state change (the
bulk page's approve / reject) also needs the session's CSRF token in a header
(api/csrf.py): Lax stays, because the sign-in link is a cross-site navigation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from starlette.requests import Request
from starlette.responses import Response

from fiberflow.api.deps import SESSION_COOKIE
from fiberflow.core.tokens import Principal, TokenError, verify


@dataclass(frozen=True, slots=True)
class SignIn:
    principal: Principal
    max_age: int  # seconds until the token expires


def sign_in(key: str, token: str, now: float | None = None) -> SignIn:
    """Check ``token`` (signature, ``exp``, claims); raises TokenError when it is no good."""
    principal = verify(key, token)
    # verify() checked the signature and that exp exists and is in the future.
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    if not isinstance(exp, int | float):
        raise TokenError("invalid token (exp is not a number)")
    max_age = int(exp - (time.time() if now is None else now))
    if max_age < 1:
        raise TokenError("token expired")
    return SignIn(principal, max_age)


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        # Lax, not Strict: the sign-in link is usually opened from a mail or chat
        # (a cross-site navigation), and Strict would drop the cookie on its redirect.
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
