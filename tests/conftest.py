"""Shared fixtures. Server-starting fixtures live in tests/fixtures/ and are imported here."""

from __future__ import annotations

from tests.fixtures.databases import database_url, engine, pg_database  # noqa: F401
from tests.fixtures.freeradius import freeradius  # noqa: F401
from tests.fixtures.lab import bng_inventory, lab_bng, lab_olt, lab_pair, lab_thread, olt_inventory  # noqa: F401
from tests.fixtures.radius_lab import lab_nas, lab_radius  # noqa: F401
from tests.fixtures.redis import dead_redis_url, redis_prefix, redis_server, redis_url  # noqa: F401
