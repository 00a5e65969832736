"""service status_before: where an operation started from

Revision ID: 0005_status_before
Revises: 0004_drift_checks
Create Date: 2026-12-07 01:10:00

- ``status_before``: the status the current (or last) operation started from. An ONT
  replacement runs from ``active`` or ``suspended`` and ends in the status it started
  from; a failed one that compensated returns the service there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_status_before"
down_revision: str | None = "0004_drift_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_before", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_instances", schema=None) as batch_op:
        batch_op.drop_column("status_before")
