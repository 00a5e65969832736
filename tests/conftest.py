"""Shared fixtures. Server-starting fixtures live in tests/fixtures/ and are imported here."""

from __future__ import annotations

from tests.fixtures.databases import database_url, engine, pg_database  # noqa: F401
from tests.fixtures.freeradius import freeradius  # noqa: F401
from tests.fixtures.radius_lab import lab_nas, lab_radius  # noqa: F401
