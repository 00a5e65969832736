"""bulk runs: one operation over many services (bulk_runs, bulk_items)

Revision ID: 0007_bulk_runs
Revises: 0006_terminal_event_index
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_bulk_runs"
down_revision: str | None = "0006_terminal_event_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bulk_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_by", sa.String(length=64), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("run_process", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_runs")),
    )
    with op.batch_alter_table("bulk_runs", schema=None) as batch_op:
        batch_op.create_index("ix_bulk_runs_status", ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_bulk_runs_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "bulk_items",
        sa.Column("bulk_id", sa.String(length=36), nullable=False),
        sa.Column("service_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bulk_id"],
            ["bulk_runs.id"],
            name=op.f("fk_bulk_items_bulk_id_bulk_runs"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("bulk_id", "service_id", name=op.f("pk_bulk_items")),
    )
    with op.batch_alter_table("bulk_items", schema=None) as batch_op:
        batch_op.create_index("ix_bulk_items_bulk_state", ["bulk_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bulk_items", schema=None) as batch_op:
        batch_op.drop_index("ix_bulk_items_bulk_state")
    op.drop_table("bulk_items")
    with op.batch_alter_table("bulk_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_runs_tenant_id"))
        batch_op.drop_index("ix_bulk_runs_status")
    op.drop_table("bulk_runs")
