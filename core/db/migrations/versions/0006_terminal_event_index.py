"""event_log: an index of the events that end an operation

Revision ID: 0006_terminal_event_index
Revises: 0005_status_before
Create Date: 2026-12-07 01:30:00

- ``ix_event_log_terminal``: ``operation_id`` of the ``completed`` / ``failed`` events
  only (partial). The publisher asks it before it stores a terminal event (at most one
  per operation) and the crash reconciler for every ended operation, whose terminal
  event a killed run may never have published.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_terminal_event_index"
down_revision: str | None = "0005_status_before"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As core/db/models/logs.py's TERMINAL_EVENT_SQL (a migration keeps its own copy).
TERMINAL = "(event_type LIKE '%.completed' OR event_type LIKE '%.failed')"


def upgrade() -> None:
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_log_terminal",
            ["operation_id"],
            unique=False,
            sqlite_where=sa.text(TERMINAL),
            postgresql_where=sa.text(TERMINAL),
        )


def downgrade() -> None:
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.drop_index("ix_event_log_terminal")
