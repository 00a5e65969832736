"""The migrations build exactly the schema the models declare, on both backends, and
every revision downgrades cleanly (an operator rolling back a release loses nothing
but the newer columns)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from fiberflow.core.db.migrate import alembic_config, downgrade, upgrade
from fiberflow.core.db.models.base import Base


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_every_revision_downgrades_and_upgrades_again(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    revisions = [r.revision for r in script.walk_revisions()]  # head first
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}"
    for target in [*revisions[1:], "base"]:
        downgrade(database_url, target)
    upgrade(database_url)
