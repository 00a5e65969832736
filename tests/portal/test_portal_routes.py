"""Portal routes over HTTP against a real API process: sign-in cookie, isolation, assets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from httpx_sse import connect_sse

from fiberflow.api.deps import SESSION_COOKIE
from fiberflow.core.db.models import Operation
from tests.fixtures.browser import PortalStack

TTL = timedelta(minutes=30)


@pytest.fixture
def client(portal_stack: PortalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal_stack.url, timeout=15) as c:
        yield c


@contextmanager
def signed_in(stack: PortalStack, sub: str, role: str = "customer") -> Iterator[httpx.Client]:
    """A client that went through the sign-in link: it holds the session cookie only."""
    with httpx.Client(base_url=stack.url, timeout=15) as c:
        r = c.get("/portal/login", params={"token": stack.token(role, sub)})
        assert r.status_code == 303, r.text
        yield c


def test_login_sets_an_httponly_samesite_cookie_and_redirects(
    portal_stack: PortalStack, client: httpx.Client
) -> None:
    token = portal_stack.token("customer", "alice", ttl=TTL)
    r = client.get("/portal/login", params={"token": token})
    assert r.status_code == 303
    assert r.headers["location"] == "/portal/services"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    raw = r.headers["set-cookie"]
    morsel = SimpleCookie(raw)[SESSION_COOKIE]
    assert morsel.value == token
    attributes = {p.strip().split("=")[0].lower() for p in raw.split(";")}
    assert "httponly" in attributes
    assert morsel["samesite"].lower() in ("lax", "strict")
    assert morsel["path"] == "/"
    max_age = int(morsel["max-age"])
    assert 0 < max_age <= TTL.total_seconds()
    assert not morsel["secure"]  # plain http on loopback; https sets Secure
    # Followed: the list of services, signed in by the cookie alone.
    page = client.get("/portal/services")
    assert page.status_code == 200 and "Your services" in page.text
    assert "Signed in as <strong>alice</strong>" in page.text


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not.a.jwt", "invalid token"),
        ("", "no token"),
        ("forged", "invalid token"),
        ("expired", "expired"),
    ],
)
def test_bad_or_expired_token_is_401_html_with_a_message(
    portal_stack: PortalStack, client: httpx.Client, token: str, reason: str
) -> None:
    from fiberflow.core.tokens import issue

    if token == "forged":
        token = issue("f" * 48, tenant_id=portal_stack.tenant_id, role="customer", sub="alice",
                      ttl=TTL)  # fmt: skip
    elif token == "expired":
        token = portal_stack.token("customer", "alice", ttl=timedelta(seconds=-5))
    r = client.get("/portal/login", params={"token": token})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in r.headers
    assert reason in r.text.lower()
    assert "Ask for a new link" in r.text or "no token" in r.text


def test_customer_sees_own_services_only_and_others_are_404(portal_stack: PortalStack) -> None:
    mine = portal_stack.new_service("gina")
    bobs = portal_stack.new_service("bob")
    other_tenant = portal_stack.new_service("gina", tenant_id=str(uuid.uuid4()))
    with signed_in(portal_stack, "gina") as c:
        listing = c.get("/portal/services")
        assert listing.status_code == 200
        assert f"/portal/services/{mine}" in listing.text
        assert bobs not in listing.text and other_tenant not in listing.text
        assert c.get(f"/portal/services/{mine}").status_code == 200
        for sid in (bobs, other_tenant, str(uuid.uuid4()), "not-a-uuid"):
            r = c.get(f"/portal/services/{sid}")
            assert r.status_code == 404, sid
            assert "Service not found" in r.text and r.headers["content-type"].startswith(
                "text/html"
            )
    with signed_in(portal_stack, "ops", role="operator") as ops:
        listing = ops.get("/portal/services").text
        assert mine in listing and bobs in listing and other_tenant not in listing


def test_pages_need_a_session(portal_stack: PortalStack, client: httpx.Client) -> None:
    sid = portal_stack.new_service("alice")
    for path in ("/portal/services", f"/portal/services/{sid}"):
        r = client.get(path)
        assert r.status_code == 401 and "sign-in link" in r.text
    client.cookies.set(SESSION_COOKIE, "garbage")
    assert client.get("/portal/services").status_code == 401


def test_the_cookie_authorizes_rest_and_sse(portal_stack: PortalStack) -> None:
    sid = portal_stack.new_service("hana")
    run = portal_stack.begin(sid, Operation.PROVISIONING)
    first = run.step(1)
    with signed_in(portal_stack, "hana") as c:
        assert "authorization" not in c.headers
        assert c.get(f"/api/v1/services/{sid}").json()["id"] == sid
        assert c.get("/api/v1/services").json()["items"][0]["id"] == sid
        history = c.get(f"/api/v1/services/{sid}/events").json()
        assert [e["id"] for e in history] == [first]
        with connect_sse(c, "GET", f"/api/v1/realtime/service-lifecycle/{sid}") as source:
            assert source.response.status_code == 200
            assert source.response.headers["content-type"].startswith("text/event-stream")
            got = next(source.iter_sse())
        assert (got.id, got.event) == (str(first), "service.provisioning.progress")
        assert got.json()["step"] == 1
    with signed_in(portal_stack, "bob") as other:
        assert other.get(f"/api/v1/services/{sid}").status_code == 404
        assert other.get(f"/api/v1/realtime/service-lifecycle/{sid}").status_code == 404


def test_logout_clears_the_cookie(portal_stack: PortalStack) -> None:
    with signed_in(portal_stack, "alice") as c:
        r = c.post("/portal/logout")
        assert r.status_code == 200 and "signed out" in r.text
        morsel = SimpleCookie(r.headers["set-cookie"])[SESSION_COOKIE]
        assert morsel.value in ("", '""') and morsel["max-age"] == "0"
        assert c.get("/portal/services").status_code == 401


def test_progress_page_shell(portal_stack: PortalStack) -> None:
    failed = portal_stack.new_service("ivan", status="failed", error="ONT <b>never</b> online")
    with signed_in(portal_stack, "ivan") as c:
        r = c.get(f"/portal/services/{failed}")
        session = c.cookies[SESSION_COOKIE]
    html = r.text
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'role="progressbar"' in html
    for attr in ('aria-valuemin="0"', 'aria-valuemax="100"', 'aria-valuenow="0"'):
        assert attr in html
    status = re.search(r'data-testid="service-status">([^<]*)<', html)
    assert status is not None
    # The initial value from the row; the error is escaped, never markup.
    assert status.group(1) == "Failed: ONT &lt;b&gt;never&lt;/b&gt; online"
    assert 'aria-live="polite"' in html
    assert 'data-testid="phase">Connecting…<' in html  # until the module has connected
    # The stream URL carries no token: the browser sends the cookie.
    assert f'data-sse-url="/api/v1/realtime/service-lifecycle/{failed}"' in html
    assert session not in html
    # Only our own assets: no CDN, no external font, no inline script.
    assert not re.search(r"(src|href)=\"https?://", html)
    assert re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html) == []


def test_assets_are_served_from_package_data(client: httpx.Client) -> None:
    names = {
        "portal.js": "text/javascript",
        "progress.js": "text/javascript",
        "live.js": "text/javascript",
        "view.js": "text/javascript",
        "portal.css": "text/css",
    }
    for name, media in names.items():
        r = client.get(f"/portal/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(media)
        assert "http://" not in r.text and "https://" not in r.text, name
        again = client.get(f"/portal/static/{name}", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
    for bad in ("__init__.py", "..%2F..%2Fapp.py", "nope.js"):
        assert client.get(f"/portal/static/{bad}").status_code == 404
