"""The portal's CSRF token: what lets the session cookie authorize a state change.

The session cookie is SameSite=Lax (the sign-in link arrives by mail or chat, a
cross-site navigation Strict would strip), and SameSite does not separate the ports
of one host anyway (the Prefect UI on another port is "same site"). So a POST never
counts the cookie alone: it also needs the ``X-CSRF-Token`` header, whose value is
an HMAC of the session token under the server's key. The portal puts it into the
pages it renders for that session; another origin can neither read the page nor send
a custom header without a CORS preflight, which this API never grants.
"""

from __future__ import annotations

import hashlib
import hmac

CSRF_HEADER = "X-CSRF-Token"
_CONTEXT = b"fiberflow portal csrf\x00"


def csrf_token(key: str, session_token: str) -> str:
    """The token of one portal session (changes with the session's JWT)."""
    return hmac.new(key.encode(), _CONTEXT + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: str, session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    # Bytes: compare_digest refuses str with non-ASCII characters (a header may have them).
    expected = csrf_token(key, session_token).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogateescape"))
