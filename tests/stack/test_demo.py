"""`fiberflow demo`: the SSE follower and its terminal progress against a real API,
the command's refusals, and the whole demo end to end (stack, portal in Chromium)."""

from __future__ import annotations

import io
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource
from rich.console import Console

from fiberflow.core.db.models import Operation
from fiberflow.core.tokens import issue
from fiberflow.lab.harness import FIBERFLOW, processes_of, stack_env
from fiberflow.stack.demo import DEMO_TENANT
from fiberflow.stack.demo_progress import ProgressView, follow, iter_messages
from fiberflow.stack.procs import free_port
from tests.fixtures.browser import PortalStack, SimulatedRun, shoot


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=False, color_system=None), out


@pytest.fixture
def operator(portal_stack: PortalStack) -> Iterator[httpx.Client]:
    token = portal_stack.token("operator", "ops")
    with httpx.Client(base_url=portal_stack.url, timeout=15,
                      headers={"Authorization": f"Bearer {token}"}) as c:  # fmt: skip
        yield c


def _publish_later(run: SimulatedRun, script: list[tuple[str, Any]], gate: threading.Event) -> None:
    gate.wait(10)
    for what, arg in script:
        if what == "step":
            run.step(arg)
        elif what == "notice":
            run.step(*arg)
        elif what == "complete":
            run.complete()
        elif what == "fail":
            run.fail(*arg)
        elif what == "restart":
            run.stack.api.stop()
            run.step(arg)  # published while the API is down
            run.stack.api.start()


def _follow_with(
    stack: PortalStack, client: httpx.Client, script: list[tuple[str, Any]], before: int = 0
) -> tuple[Any, str]:
    sid = stack.new_service("demo-x")
    run = stack.begin(sid, Operation.PROVISIONING)
    for n in range(1, before + 1):
        run.step(n)
    gate = threading.Event()
    publisher = threading.Thread(target=_publish_later, args=(run, script, gate))
    publisher.start()
    console, out = _console()
    gate.set()
    try:
        with ProgressView(console) as view:
            outcome = follow(client, sid, view, timeout=60)
    finally:
        publisher.join(30)
    return outcome, out.getvalue()


def test_follow_draws_every_step_until_completed(
    portal_stack: PortalStack, operator: httpx.Client
) -> None:
    script: list[tuple[str, Any]] = [("step", n) for n in range(2, 7)] + [("complete", None)]
    outcome, text = _follow_with(portal_stack, operator, script, before=1)
    assert outcome.ok and outcome.operation == "provisioning"
    assert [n for n, _status, _took in outcome.steps] == [1, 2, 3, 4, 5, 6]
    assert [s for _n, s, _t in outcome.steps][:3] == ["validating", "allocating", "configuring"]
    for n in range(1, 7):
        assert f"step {n} " in text
    assert "Provisioning done" in text and "100%" in text


def test_follow_reports_failure_with_notices(
    portal_stack: PortalStack, operator: httpx.Client
) -> None:
    script: list[tuple[str, Any]] = [
        ("step", 2), ("step", 3), ("notice", (3, "retrying", "Configuring (attempt 2)")),
        ("notice", (3, "failed", "OLT timeout")),
        ("notice", (2, "rolled_back", "Released the IP address and VLAN")),
        ("fail", (3, "OLT timeout")),
    ]  # fmt: skip
    outcome, text = _follow_with(portal_stack, operator, script, before=1)
    assert not outcome.ok and outcome.error == "OLT timeout"
    assert "retrying" in text and "rolled back" in text and "failed" in text


def test_follow_resumes_across_an_api_restart_without_duplicates(
    portal_stack: PortalStack, operator: httpx.Client
) -> None:
    script: list[tuple[str, Any]] = [
        ("step", 2), ("restart", 3), ("step", 4), ("step", 5), ("step", 6), ("complete", None),
    ]  # fmt: skip
    outcome, text = _follow_with(portal_stack, operator, script, before=1)
    assert outcome.ok
    assert [n for n, _s, _t in outcome.steps] == [1, 2, 3, 4, 5, 6]
    assert text.count("step 3 configuring") == 1


def test_iter_messages_parses_ids_events_and_skips_comments() -> None:
    lines = [": ping", "", "id: 7", "event: service.provisioning.progress",
             'data: {"step": 1}', "", "data: not json", "", ""]  # fmt: skip
    wire = httpx.Response(200, headers={"content-type": "text/event-stream"},
                          text="\n".join(lines))  # fmt: skip
    got = list(iter_messages(EventSource(wire).iter_sse()))
    assert [(m.id, m.event, m.data) for m in got] == [
        (7, "service.provisioning.progress", {"step": 1})
    ]


def _demo(tmp_path: Path, api_port: int, prefect_port: int) -> list[str]:
    return [*FIBERFLOW, "demo", "--api-port", str(api_port), "--prefect-port",
            str(prefect_port), "--data-dir", str(tmp_path / "data")]  # fmt: skip


def test_demo_refuses_a_port_in_use_and_a_missing_key(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        r = subprocess.run(
            _demo(tmp_path, busy, free_port()), env=stack_env(tmp_path / "data"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 1
    assert f"--api-port: port {busy} is in use" in r.stderr
    env = stack_env(tmp_path / "data")
    env.pop("FIBERFLOW_DEV_MODE")
    r = subprocess.run(_demo(tmp_path, free_port(), free_port()), env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "FIBERFLOW_JWT_SECRET" in r.stderr


LINK = re.compile(r"(http://127\.0\.0\.1:\d+/portal/login\?token=[\w.-]+)")


@pytest.mark.slow
@pytest.mark.browser
def test_demo_end_to_end_portal_then_ctrl_c(tmp_path: Path, chromium: Any) -> None:
    from playwright.sync_api import expect

    api_port, prefect_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    log = tmp_path / "demo.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _demo(tmp_path, api_port, prefect_port), env=stack_env(data_dir, COLUMNS="200"),
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (match := LINK.search(log.read_text(errors="replace"))):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "step 6 completed" in text and "Service active" in text
        assert f"Prefect UI:  http://127.0.0.1:{prefect_port}" in text

        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        expect.set_options(timeout=60_000)
        page = context.new_page()
        page.goto(match.group(1))
        page.get_by_role("link", name=re.compile("Fibre")).first.click()
        status = page.get_by_test_id("service-status")
        expect(status).to_have_text("Active")
        expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        expect(page.locator('[data-testid="steps"] li[data-state="done"]')).to_have_count(6)
        shoot(page, "demo-active")

        # The operator suspends the subscriber: the open page follows the real flow.
        sid = page.url.rsplit("/", 1)[-1]
        key = (data_dir / "dev-jwt-secret").read_text().strip()
        token = issue(key, tenant_id=DEMO_TENANT, role="operator", sub="ops",
                      ttl=timedelta(minutes=10))  # fmt: skip
        r = httpx.post(f"http://127.0.0.1:{api_port}/api/v1/services/{sid}/suspend",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
        assert r.status_code == 202, r.text
        expect(status).to_have_text("Suspended")
        expect(page.get_by_test_id("phase")).to_have_text("Suspension complete")
        shoot(page, "demo-suspended")
        context.close()

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(90) == 0, log.read_text()
        assert "Stopping the stack" in log.read_text()
        time.sleep(0.5)
        assert processes_of(data_dir) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in processes_of(data_dir):
            p.kill()
