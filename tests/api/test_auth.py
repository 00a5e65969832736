"""Authentication and roles on the REST API: bad tokens are 401 on every /api/v1 route,
a customer on an operator route is 403, and 401/403 come before 404/409/422."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.routing import APIRoute

from fiberflow.api.deps import SESSION_COOKIE
from fiberflow.core.db.models import ServiceStatus
from tests.fixtures.api_app import TENANT_A, ApiApp, app_routes, new_serial

SERVICES = "/api/v1/services"
OTHER_KEY = "another-key-that-is-long-enough-0123456789abcdef"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": "op-1", "tenant_id": TENANT_A, "role": "operator",
                              "iat": int(now.timestamp()),
                              "exp": int((now + timedelta(minutes=5)).timestamp())}  # fmt: skip
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def bad_tokens(key: str) -> dict[str, str]:
    """name -> Authorization header value; every one must be refused with 401."""
    signed = lambda **kw: jwt.encode(_claims(**kw), key, algorithm="HS256")  # noqa: E731
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    future = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    tokens = {
        "garbage": "not-a-jwt",
        "three garbage parts": "abc.def.ghi",
        "expired": signed(exp=past),
        "not yet valid (nbf)": signed(nbf=future),
        "exp not a number": signed(exp="tomorrow"),
        "wrong signature": jwt.encode(_claims(), OTHER_KEY, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "alg none with signature": jwt.encode(_claims(), key, algorithm="HS256")
        .rsplit(".", 1)[0]
        .replace(_b64({"alg": "HS256", "typ": "JWT"}), _b64({"alg": "none", "typ": "JWT"}), 1)
        + ".",
        "HS512 with the right key": jwt.encode(_claims(), key, algorithm="HS512"),
        "tampered payload": ".".join(
            [
                jwt.encode(_claims(), key, algorithm="HS256").split(".")[0],
                _b64(_claims(role="operator", tenant_id=str(uuid.uuid4()))),
                jwt.encode(_claims(), key, algorithm="HS256").split(".")[2],
            ]
        ),  # fmt: skip
        "tenant_id not a UUID": signed(tenant_id="tenant-a"),
        "tenant_id a number": signed(tenant_id=12),
        "tenant_id empty": signed(tenant_id=""),
        "role admin": signed(role="admin"),
        "role Operator": signed(role="Operator"),
        "role empty": signed(role=""),
        "role a list": signed(role=["operator"]),
        "sub empty": signed(sub=""),
        "sub 65 chars": signed(sub="s" * 65),
        "sub a number": signed(sub=7),
    }
    for claim in ("exp", "sub", "tenant_id", "role"):
        missing = _claims()
        del missing[claim]
        tokens[f"missing {claim}"] = jwt.encode(missing, key, algorithm="HS256")
    headers = {name: f"Bearer {tok}" for name, tok in tokens.items()}
    headers.update({"Basic scheme": "Basic dXNlcjpwYXNz", "Bearer without token": "Bearer ",
                    "token without scheme": tokens["garbage"]})  # fmt: skip
    return headers


def _api_routes(app: ApiApp) -> list[tuple[str, str]]:
    routes = [(method, path) for method, path, route in app_routes(app.app)
              if isinstance(route, APIRoute) and path.startswith("/api/v1")]  # fmt: skip
    assert len(routes) >= 8, routes
    return routes


def _is_401_json(r: Any) -> bool:
    if r.status_code != 401 or not r.headers.get("content-type", "").startswith("application/json"):
        return False
    detail = r.json().get("detail")
    return (
        isinstance(detail, str) and bool(detail) and r.headers.get("www-authenticate") == "Bearer"
    )


def test_every_bad_token_is_401_with_a_json_message_on_every_api_route(
    api_app_sqlite: ApiApp,
) -> None:
    app = api_app_sqlite
    sid = app.insert_service()
    failures = []
    for method, path in _api_routes(app):
        url = path.replace("{service_id}", sid)
        attempts: dict[str, dict[str, str]] = {"no token": {}}
        attempts.update({n: {"Authorization": v} for n, v in bad_tokens(app.jwt_key).items()})
        for name, headers in attempts.items():
            r = app.client.request(method, url, headers=headers)
            if not _is_401_json(r):
                failures.append(f"{method} {path} [{name}]: {r.status_code} {r.text[:120]}")
        # The portal's session cookie is checked just as strictly.
        app.client.cookies.set(SESSION_COOKIE, "not-a-jwt")
        r = app.client.request(method, url)
        app.client.cookies.clear()
        if not _is_401_json(r):
            failures.append(f"{method} {path} [garbage cookie]: {r.status_code}")
    assert not failures, f"{len(failures)} not refused:\n" + "\n".join(failures[:40])


def test_good_tokens_work_by_header_lowercase_scheme_and_cookie(api_app_sqlite: ApiApp) -> None:
    app = api_app_sqlite
    sid = app.insert_service(customer="cust-1")
    token = app.token("customer", sub="cust-1")
    for kwargs in ({"headers": {"Authorization": f"Bearer {token}"}},
                   {"headers": {"Authorization": f"bearer {token}"}}):  # fmt: skip
        assert app.client.get(f"{SERVICES}/{sid}", **kwargs).status_code == 200
    app.client.cookies.set(SESSION_COOKIE, token)
    try:
        assert app.client.get(f"{SERVICES}/{sid}").status_code == 200
    finally:
        app.client.cookies.clear()
    # A tenant_id in another spelling of the same UUID is the same tenant.
    upper = jwt.encode(_claims(tenant_id=TENANT_A.upper()), app.jwt_key, algorithm="HS256")
    r = app.client.get(SERVICES, headers={"Authorization": f"Bearer {upper}"})
    assert r.status_code == 200 and len(r.json()["items"]) == 1


OPERATOR_ONLY = [
    ("POST", SERVICES),
    ("POST", SERVICES + "/{service_id}/suspend"),
    ("POST", SERVICES + "/{service_id}/resume"),
    ("POST", SERVICES + "/{service_id}/terminate"),
    ("GET", "/api/v1/inventory"),
    ("GET", "/api/v1/services/lifecycle/statistics"),
]


@pytest.mark.parametrize(
    ("method", "path"), OPERATOR_ONLY, ids=[f"{m} {p}" for m, p in OPERATOR_ONLY]
)
def test_a_customer_on_an_operator_route_is_403(api_app_sqlite: ApiApp, method: str,
                                                path: str) -> None:  # fmt: skip
    app = api_app_sqlite
    sid = app.insert_service(customer="cust-1")  # their own service
    r = app.client.request(method, path.replace("{service_id}", sid),
                           headers=app.auth("customer", sub="cust-1"))  # fmt: skip
    assert r.status_code == 403, r.text
    assert "operator" in r.json()["detail"]
    assert app.service(sid).status == "active"


def test_403_and_401_come_before_409_and_422(api_app_sqlite: ApiApp) -> None:
    app = api_app_sqlite
    pending = app.insert_service(customer="cust-1", status=ServiceStatus.PENDING)
    customer = app.auth("customer", sub="cust-1")
    json_ct = {"Content-Type": "application/json"}
    valid = {"customer_ref": "cust-1", "plan": "100M", "olt": "olt-1", "pon_port": "0/1/3",
             "ont_serial": new_serial()}  # fmt: skip
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], int]] = [
        ("schema-invalid body", SERVICES, {"json": {"plan": "x\n"}}, customer, 403),
        ("malformed JSON", SERVICES, {"content": b'{"plan": '}, {**customer, **json_ct}, 403),
        ("not UTF-8", SERVICES, {"content": b'{"plan": "\xff"}'}, {**customer, **json_ct}, 403),
        ("extra field", SERVICES, {"json": {**valid, "vlan": 1}}, customer, 403),
        ("bad Idempotency-Key", SERVICES, {"json": valid},
         {**customer, "Idempotency-Key": "a b"}, 403),
        ("state forbids (409)", f"{SERVICES}/{pending}/suspend", {}, customer, 403),
        ("bad suspend body", f"{SERVICES}/{pending}/suspend", {"json": {"hard": "x"}},
         customer, 403),
        ("malformed suspend body", f"{SERVICES}/{pending}/suspend", {"content": b"{"},
         {**customer, **json_ct}, 403),
        ("no token, malformed JSON", SERVICES, {"content": b"{"}, json_ct, 401),
        ("no token, not UTF-8", SERVICES, {"content": b"\xff\xfe"}, json_ct, 401),
        ("no token, invalid body", SERVICES, {"json": {"plan": 1}}, {}, 401),
        ("no token, state forbids", f"{SERVICES}/{pending}/resume", {}, {}, 401),
        ("operator, not UTF-8 (422)", SERVICES, {"content": b"\xff\xfe"},
         {**app.auth(), **json_ct}, 422),
        ("no token, nested too deeply", SERVICES, {"content": b"[" * 100_000}, json_ct, 401),
        ("customer, nested too deeply", SERVICES, {"content": b"[" * 100_000},
         {**customer, **json_ct}, 403),
        ("operator, nested too deeply (422)", SERVICES, {"content": b"[" * 100_000},
         {**app.auth(), **json_ct}, 422),
    ]  # fmt: skip
    failures = []
    for name, url, kwargs, headers, expected in cases:
        r = app.client.post(url, headers=headers, **kwargs)
        body = r.json() if r.headers["content-type"].startswith("application/json") else {}
        if r.status_code != expected or not isinstance(body.get("detail"), str):
            failures.append(f"{name}: expected {expected}, got {r.status_code} {r.text[:150]}")
    assert not failures, "\n".join(failures)
    assert app.service(pending).status == "pending"
    assert app.count() == 1


def test_the_session_cookie_reads_but_never_changes_anything(api_app_sqlite: ApiApp) -> None:
    """A browser sends the cookie with any request to the host, also one another page
    makes it send (CSRF): only GET accepts it; a change needs the Authorization header."""
    app = api_app_sqlite
    sid = app.insert_service(status=ServiceStatus.PENDING)
    app.client.cookies.set(SESSION_COOKIE, app.token())  # an operator's session
    try:
        assert app.client.get(f"{SERVICES}/{sid}").status_code == 200
        valid = {"customer_ref": "cust-1", "plan": "100M", "olt": "olt-1",
                 "pon_port": "0/1/3", "ont_serial": new_serial()}  # fmt: skip
        for url, kwargs in ((f"{SERVICES}/{sid}/terminate", {}),
                            (f"{SERVICES}/{sid}/suspend", {"json": {"hard": True}}),
                            (SERVICES, {"json": valid})):  # fmt: skip
            r = app.client.post(url, **kwargs)
            assert r.status_code == 401, (url, r.text)
            assert "Bearer" in r.json()["detail"]
    finally:
        app.client.cookies.clear()
    assert app.service(sid).status == "pending" and app.count() == 1
