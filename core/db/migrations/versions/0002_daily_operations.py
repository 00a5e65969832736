"""daily operations: ONT receive power, zero-touch activation

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 00:50:00

- ``ont_rx_power_dbm``: the ONT's last measured receive power (optical acceptance).
- ``activation``: ``immediate`` (provision now) or ``on_discovery`` (zero-touch: wait
  in ``awaiting_ont`` until the ONT shows in its OLT's autofind).
- ``ont_serial`` becomes optional: a zero-touch order may bind whichever ONT appears
  alone on its port.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ont_rx_power_dbm", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "activation", sa.String(length=16), nullable=False, server_default="immediate"
            )
        )
        batch_op.alter_column("ont_serial", existing_type=sa.String(length=16), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("service_instances", schema=None) as batch_op:
        batch_op.alter_column("ont_serial", existing_type=sa.String(length=16), nullable=False)
        batch_op.drop_column("activation")
        batch_op.drop_column("ont_rx_power_dbm")
