"""Tenant and customer isolation, in one place: a service a principal may not see is 404."""

from __future__ import annotations

import uuid

from fastapi import HTTPException, status
from sqlalchemy import Select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import ServiceInstance
from fiberflow.core.tokens import Principal


def visible(
    query: Select[tuple[ServiceInstance]], principal: Principal
) -> Select[tuple[ServiceInstance]]:
    """Restrict a service query to what ``principal`` may see."""
    query = query.where(ServiceInstance.tenant_id == principal.tenant_id)
    if not principal.is_operator:
        query = query.where(ServiceInstance.customer_ref == principal.sub)
    return query


def can_see(service: ServiceInstance, principal: Principal) -> bool:
    if service.tenant_id != principal.tenant_id:
        return False
    return principal.is_operator or service.customer_ref == principal.sub


def get_visible_service(session: Session, principal: Principal, service_id: str) -> ServiceInstance:
    """The service, or 404 — also for another tenant's or another customer's service."""
    canonical = canonical_uuid(service_id)
    row = session.get(ServiceInstance, canonical) if canonical else None
    if row is None or not can_see(row, principal):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"service {service_id} not found")
    return row


def canonical_uuid(value: str) -> str | None:
    """The id as stored (lower case), for a UUID in its usual 8-4-4-4-12 form; else None."""
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        return None
    return canonical if canonical == value.lower() else None
