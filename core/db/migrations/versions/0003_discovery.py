"""discovery: ONTs seen in OLT autofind on the last pass

Revision ID: 0003_discovery
Revises: 0002
Create Date: 2026-12-07 00:45:00

- ``ont_sightings``: the unregistered ONTs each OLT listed in ``display ont autofind
  all`` on the last discovery pass (zero-touch activation binds them to orders).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_discovery"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ont_sightings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("olt", sa.String(length=64), nullable=False),
        sa.Column("pon_port", sa.String(length=16), nullable=False),
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ont_sightings")),
        sa.UniqueConstraint("olt", "serial", name="uq_ont_sightings_olt_serial"),
    )


def downgrade() -> None:
    op.drop_table("ont_sightings")
