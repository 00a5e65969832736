"""Which bulk run a principal may see: an operator's own tenant's, else 404.

A bulk run is an operator's tool: customers get 403 before anything is looked up
(the route's ``OperatorDep`` / the page's role check), another tenant's bulk run and
an id that is no UUID are 404, exactly like a service.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from fiberflow.api.access import canonical_uuid
from fiberflow.core.db.models import BulkRun
from fiberflow.core.tokens import Principal


def get_tenant_bulk(session: Session, principal: Principal, bulk_id: str) -> BulkRun:
    """The bulk run ``bulk_id`` of the principal's tenant, or 404."""
    canonical = canonical_uuid(bulk_id)
    row = session.get(BulkRun, canonical) if canonical else None
    if row is None or row.tenant_id != principal.tenant_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"bulk run {bulk_id} not found")
    return row
