"""core/catalogue.py: prefect.yaml declares exactly the catalogue's deployments, every
operation has one well-formed entry, and the service model follows its status machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fiberflow.core import catalogue
from fiberflow.core.catalogue import (
    DEPLOYMENTS,
    OPERATIONS,
    TRANSITIONAL,
    Operation,
    ServiceStatus,
)
from fiberflow.core.db.models import InvalidTransition, ServiceInstance

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in doc["deployments"]}


def test_prefect_yaml_declares_the_catalogue_deployments() -> None:
    declared = _declared()
    assert list(declared) == [d.name for d in DEPLOYMENTS]  # each once, in the same order
    for spec in DEPLOYMENTS:
        d = declared[spec.name]
        assert d["entrypoint"] == spec.entrypoint
        assert d["description"] == spec.description
        if spec.cron:
            assert d["schedules"] == [{"cron": spec.cron, "timezone": "UTC"}]
        else:
            assert "schedules" not in d
        if spec.concurrency_limit is not None:
            # collision_strategy inside concurrency_limit: `prefect deploy` drops a
            # sibling `concurrency_options` key without a word.
            assert d["concurrency_limit"] == {
                "limit": spec.concurrency_limit,
                "collision_strategy": spec.collision_strategy,
            }
        else:
            assert "concurrency_limit" not in d
        assert "concurrency_options" not in d


def test_the_nightly_deployment() -> None:
    nightly = catalogue.REPROVISION_NIGHTLY
    assert nightly.cron == "30 2 * * *"
    assert (nightly.concurrency_limit, nightly.collision_strategy) == (1, "CANCEL_NEW")
    assert catalogue.RECONCILE.full_name == "reconcile/reconcile"


def test_every_operation_has_one_entry() -> None:
    assert list(OPERATIONS) == list(Operation)
    names = [d.name for d in DEPLOYMENTS]
    assert len(names) == len(set(names))
    flows = [e.deployment.flow for e in OPERATIONS.values()]
    assert len(flows) == len(set(flows))
    for op, entry in OPERATIONS.items():
        assert entry.operation is op and catalogue.of(op.value) is entry
        assert entry.noun == op.value
        assert catalogue.by_flow(entry.deployment.flow) is entry
    assert catalogue.by_flow(catalogue.RECONCILE.flow) is None
    assert catalogue.by_flow(catalogue.REPROVISION_NIGHTLY.flow) is None
    with pytest.raises(ValueError):
        catalogue.of("no_such_operation")


@pytest.mark.parametrize("op", list(Operation))
def test_steps_are_numbered_in_order_and_end_completed(op: Operation) -> None:
    steps = list(catalogue.of(op).steps.values())
    assert [s.number for s in steps] == list(range(1, len(steps) + 1))
    assert {s.total for s in steps} == {len(steps)}
    assert {s.operation for s in steps} == {op}
    assert [s.status for s in steps] == list(catalogue.of(op).steps)
    assert steps[-1].status == "completed"
    assert all(s.message for s in steps)


def test_statuses_form_the_status_machine() -> None:
    running = {e.running for e in OPERATIONS.values()}
    assert len(running) == len(OPERATIONS)  # the running status tells the operation
    assert running | {ServiceStatus.PENDING} == TRANSITIONAL
    for entry in OPERATIONS.values():
        assert entry.ends_in not in TRANSITIONAL
        assert entry.starts_from and not entry.starts_from & running


def test_the_worker_preloads_every_deployed_flow_module() -> None:
    modules = catalogue.flow_modules()
    assert set(modules) == {d.entrypoint.partition(":")[0] for d in DEPLOYMENTS}
    assert all(m.startswith("fiberflow.flows.") for m in modules)


@pytest.mark.parametrize("op", list(Operation))
@pytest.mark.parametrize("status", list(ServiceStatus))
def test_the_model_follows_the_catalogue(op: Operation, status: ServiceStatus) -> None:
    entry = catalogue.of(op)
    svc = ServiceInstance(status=status.value)
    if status not in entry.starts_from:
        with pytest.raises(InvalidTransition):
            svc.begin(op)
        return
    svc.begin(op)
    assert (svc.status, svc.current_operation) == (entry.running.value, op.value)
    assert svc.status_before == status.value
    svc.finish(op)
    # ends_in None: the status it started from (an ONT replacement)
    assert svc.status == (entry.ends_in or status).value
