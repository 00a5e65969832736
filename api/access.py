"""Tenant and customer isolation, in one place: a service a principal may not see is 404."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy import Select
from sqlalchemy.orm import Session

from core.db.models import ServiceInstance
from core.tokens import Principal


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
    row = session.get(ServiceInstance, service_id) if _is_uuid(service_id) else None
    if row is None or not can_see(row, principal):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"service {service_id} not found")
    return row


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
