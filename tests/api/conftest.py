"""The stream tests' fixtures around ``sse_api`` (one API process per test module)."""

from tests.fixtures.sse_api import api_engine, client, pub  # noqa: F401
