"""Shared fixtures. Server-starting fixtures live in tests/fixtures/ and are imported here."""

from __future__ import annotations

import os

# Before anything reads the settings (get_settings caches them per process): short
# retry delays and ONT wait for the tests.
os.environ.setdefault("FIBERFLOW_TASK_RETRY_DELAY_SECONDS", "0.2")
os.environ.setdefault("FIBERFLOW_ONT_ONLINE_TIMEOUT_SECONDS", "4")

import pytest

from fiberflow.core import ports
from tests.fixtures.api_app import api_app, api_app_sqlite, api_inventory, prefect_deployments  # noqa: F401
from tests.fixtures.browser import chromium, portal_stack  # noqa: F401
from tests.fixtures.databases import database_url, engine, pg_database  # noqa: F401
from tests.fixtures.freeradius import freeradius  # noqa: F401
from tests.fixtures.lab import bng_inventory, lab_bng, lab_olt, lab_pair, lab_thread, olt_inventory  # noqa: F401
from tests.fixtures.lifecycle import lifecycle  # noqa: F401
from tests.fixtures.prefect import prefect_api, prefect_server  # noqa: F401
from tests.fixtures.radius_lab import lab_nas, lab_radius  # noqa: F401
from tests.fixtures.redis import dead_redis_url, redis_prefix, redis_server, redis_url  # noqa: F401
from tests.fixtures.scheduling import pytest_collection_modifyitems  # noqa: F401
from tests.fixtures.sse_api import sse_api  # noqa: F401


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A pytest-xdist worker's port counter (core.ports) outlives no run.
    counter = ports.worker_counter()
    if counter is not None:
        counter.unlink(missing_ok=True)
