"""After a plan change, a real FreeRADIUS (rlm_sql reading the same database) answers
the subscriber's Access-Request with the new plan's reply attributes, asked by
``radtest`` as an operator would."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fiberflow.core.db.models import Operation
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.flows.plan_change import change_plan
from fiberflow.flows.provision import provision
from tests.fixtures.freeradius import FreeRadius
from tests.fixtures.lifecycle import Lifecycle

pytestmark = [pytest.mark.freeradius, pytest.mark.postgres]


def _radtest(fr: FreeRadius, user: str, password: str) -> str:
    radtest = shutil.which("radtest")
    assert radtest is not None, "radtest (Debian freeradius-utils) is not installed"
    done = subprocess.run(
        [radtest, "-x", user, password, f"{fr.host}:{fr.auth_port}", "0", fr.secret],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_radtest_gets_the_new_plan_after_the_change(
    freeradius: FreeRadius, lifecycle: Lifecycle
) -> None:
    assert lifecycle.database_url == freeradius.database_url  # one set of rlm_sql tables
    sid = lifecycle.new_service(plan="100M")
    provision(sid)
    svc = lifecycle.service(sid)
    assert svc.status == "active", svc.error
    user = svc.radius_username
    assert user is not None
    sub = RadiusStore(lifecycle.engine).get(user)
    assert sub is not None and sub.password is not None
    before = _radtest(freeradius, user, sub.password)
    assert "Access-Accept" in before, before + freeradius.log_text()[-3000:]
    assert 'Cisco-AVPair = "ip:sub-qos-policy-in=PLAN-100M-IN"' in before, before

    lifecycle.begin(sid, Operation.PLAN_CHANGE)
    change_plan(sid, "1G")
    assert lifecycle.service(sid).plan == "1G"

    after = _radtest(freeradius, user, sub.password)
    assert "Access-Accept" in after, after
    assert 'Cisco-AVPair = "ip:sub-qos-policy-in=PLAN-1G-IN"' in after, after
    assert 'Cisco-AVPair = "ip:sub-qos-policy-out=PLAN-1G-OUT"' in after, after
    assert "PLAN-100M" not in after
    # Same address and username: only the plan changed.
    assert f"Framed-IP-Address = {svc.ip_address}" in after, after
