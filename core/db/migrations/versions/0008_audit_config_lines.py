"""device_command_audit: which commands were configuration lines

Revision ID: 0008_audit_config_lines
Revises: 0007_bulk_runs
Create Date: 2026-12-08 10:00:00

- ``config``: true for a configuration line a change sent to a device (the lines a dry
  run lists, in the order sent); false for reads, mode changes (enable, config, return,
  configure terminal, end), logins and RADIUS/packet records. Rows written before this
  revision read false.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_audit_config_lines"
down_revision: str | None = "0007_bulk_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("device_command_audit", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("config", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("device_command_audit", schema=None) as batch_op:
        batch_op.drop_column("config")
