"""JWT issue and verification (HS256, ``exp`` required). Shared by the CLI and the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

ALGORITHM = "HS256"
Role = Literal["operator", "customer"]
ROLES: tuple[Role, ...] = ("operator", "customer")


class TokenError(ValueError):
    """The token is missing, malformed, expired or badly signed."""


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    tenant_id: str
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def issue(key: str, *, tenant_id: str, role: str, sub: str, ttl: timedelta) -> str:
    tenant = str(uuid.UUID(tenant_id))  # ValueError on a non-UUID tenant
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = datetime.now(UTC)
    claims = {"sub": sub, "tenant_id": tenant, "role": role, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify(key: str, token: str) -> Principal:
    try:
        # algorithms= pins HS256: "alg: none" and RS/HS confusion are refused here.
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "tenant_id", "role"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token ({exc})") from None
    sub, tenant, role = claims.get("sub"), claims.get("tenant_id"), claims.get("role")
    if not isinstance(sub, str) or not sub or len(sub) > 64:
        raise TokenError("invalid token (bad sub claim)")
    try:
        tenant = str(uuid.UUID(str(tenant)))
    except ValueError:
        raise TokenError("invalid token (tenant_id is not a UUID)") from None
    if role not in ROLES:
        raise TokenError("invalid token (role must be operator or customer)")
    return Principal(sub=sub, tenant_id=tenant, role=role)
