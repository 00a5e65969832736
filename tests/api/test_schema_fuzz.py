"""Schemathesis against the app's own OpenAPI schema, as tenant A's operator.

Every operation in the schema is fuzzed (a new route is fuzzed without touching this
file), twice where it takes a service id: with generated ids and with the id of a real
(pending) service, so requests reach the database queries too. The requests go through
the in-process app (TestClient, lifespan running) on SQLite with the session's Prefect
server (no worker), and every answer must be below 500, JSON where the schema says so,
and match the documented response schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from fiberflow.core.db.migrate import upgrade
from fiberflow.core.db.models import ServiceStatus
from tests.fixtures.api_app import ApiApp, open_api

MAX_EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip
SQLITE_INT_MAX = 2**63 - 1


KNOWN_5XX: list[Callable[[str, Any], bool]] = []


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, api_inventory: Path,
             prefect_deployments: str) -> Iterator[ApiApp]:  # fmt: skip
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'api.db'}"
    upgrade(url)
    # 500s come back as answers (as from a real server), not as exceptions in the test.
    with open_api(url, tmp / "data", api_inventory, prefect_deployments,
                  raise_server_exceptions=False) as app:  # fmt: skip
        yield app


def _send(app: ApiApp, case: Any, headers: dict[str, str]) -> Any:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    if "text/event-stream" in json.dumps(case.operation.definition.raw.get("responses", {})):
        # A stream never ends in TestClient: take the status and first bytes only.
        query = "&".join(f"{k}={v}" for k, v in (kwargs.get("params") or {}).items())
        path = case.formatted_path + (f"?{query}" if query else "")
        status, text = app.first_response(kwargs["method"], path, kwargs["headers"])
        return _Answer(status, text)
    if "data" in kwargs:
        kwargs["content"] = kwargs.pop("data")
    kwargs.pop("cookies", None)
    return app.client.request(**kwargs)


class _Answer:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text = status, text


def _fuzz(app: ApiApp, op: Any, real_id: str | None, headers: dict[str, str],
          failures: dict[str, str]) -> None:  # fmt: skip
    key = f"{op.label}{' (real id)' if real_id else ''}"

    @given(case=op.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def run(case: Any) -> None:
        if real_id:
            case.path_parameters = {**(case.path_parameters or {}), "service_id": real_id}
        r = _send(app, case, headers)
        if r.status_code >= 500:
            if not any(known(op.label, case) for known in KNOWN_5XX):
                failures.setdefault(f"{key}: {r.status_code}", case.as_curl_command())
            return
        if isinstance(r, _Answer):
            return  # a stream: status only
        # Raises (and Hypothesis shrinks) on a failed check.
        case.validate_response(r, checks=CHECKS, headers=headers)

    run()


def test_fuzzed_requests_never_get_a_server_error(fuzz_app: ApiApp) -> None:
    app = fuzz_app
    sid = app.insert_service(status=ServiceStatus.PENDING)
    schema = schemathesis.openapi.from_dict(app.client.get("/openapi.json").json())
    token = {"Authorization": f"Bearer {app.token()}"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for op in operations:
        _fuzz(app, op, None, token, failures)
        if "{service_id}" in op.path:
            _fuzz(app, op, sid, token, failures)
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert app.service(sid).status == "pending"  # nothing the fuzzer sent could start it


def test_events_after_beyond_64_bits_is_refused_not_a_server_error(fuzz_app: ApiApp) -> None:
    sid = fuzz_app.insert_service()
    url = f"/api/v1/services/{sid}/events"
    r = fuzz_app.client.get(url, params={"after": SQLITE_INT_MAX + 1}, headers=fuzz_app.auth())
    assert r.status_code < 500
