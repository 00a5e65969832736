"""Shared fixtures. Server-starting fixtures live in tests/fixtures/ and are imported here."""

from __future__ import annotations

from tests.fixtures.databases import database_url, engine, pg_database  # noqa: F401
