"""``fiberflow demo``: the whole stack, one subscriber provisioned live, the portal link.

Starts ``fiberflow up`` as a child process (its own process group: this process
forwards SIGINT/SIGTERM to it), waits for ``/healthz`` 200, orders a demo
subscriber through the REST API with an operator token, follows the SSE stream
with a rich progress bar, prints the portal sign-in link (a customer token for
that subscriber) and the Prefect UI, then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

import httpx
from rich.console import Console

from fiberflow.core.settings import Settings
from fiberflow.core.tokens import issue
from fiberflow.stack.demo_progress import FollowTimeout, Outcome, ProgressView, follow
from fiberflow.stack.procs import port_in_use

log = logging.getLogger(__name__)

# One tenant for every demo run: the demo's operator sees all its subscribers.
DEMO_TENANT = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://fiberflow.invalid/demo"))
UP_LOG = "demo-up.log"
STOP_TIMEOUT = 60.0


class DemoError(Exception):
    """The demo cannot go on (a port is taken, the stack did not start, ...)."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; ``signum`` is forwarded to the stack."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True, slots=True)
class DemoOptions:
    api_port: int = 8000
    prefect_port: int = 4200
    start_timeout: float = 300.0
    run_timeout: float = 600.0


@dataclass(frozen=True, slots=True)
class DemoService:
    id: str
    customer_ref: str


def up_argv(settings: Settings, opts: DemoOptions) -> list[str]:
    return [
        sys.executable, "-m", "fiberflow.stack.cli", "up",
        "--api-port", str(opts.api_port), "--prefect-port", str(opts.prefect_port),
        "--data-dir", str(settings.data_dir),
    ]  # fmt: skip


class Demo:
    def __init__(self, settings: Settings, opts: DemoOptions, console: Console) -> None:
        self.settings = settings
        self.opts = opts
        self.console = console
        self.api_url = f"http://127.0.0.1:{opts.api_port}"
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: int | None = None  # the first SIGINT/SIGTERM received
        self.failed = False

    # -- the run ---------------------------------------------------------------------
    def run(self) -> int:
        """Everything, until a signal. 0 after a clean stop, 1 when provisioning failed."""
        key = self.settings.jwt_key()  # before the child: both must use one dev key
        for port, flag in ((self.opts.api_port, "--api-port"),
                           (self.opts.prefect_port, "--prefect-port")):  # fmt: skip
            if port_in_use(port):
                raise DemoError(f"{flag}: port {port} is in use (another stack running?)")
        outcome: Outcome | None = None
        with self._signals():
            try:
                self._start_up()
                self._wait_healthy()
                operator_token = issue(
                    key, tenant_id=DEMO_TENANT, role="operator", sub="demo-operator",
                    ttl=timedelta(hours=12),
                )  # fmt: skip
                with self._client(operator_token) as operator:
                    service = self._order(operator)
                    outcome = self._follow(operator, service)
                    self._summary(operator, service, outcome, key)
                self._serve()
            except Interrupted as stop:
                self.console.print("\n[bold]Stopping the stack…[/]")
                return self._stop_child(stop.signum, outcome)
            except BaseException:
                self._stop_child(signal.SIGTERM, outcome)
                raise
        return 1  # not reached: _serve() ends by a signal or raises

    def _client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def _start_up(self) -> None:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = data_dir / UP_LOG
        env = {**os.environ, "FIBERFLOW_DATA_DIR": str(data_dir)}
        with log_path.open("ab") as out:
            self.child = subprocess.Popen(
                up_argv(self.settings, self.opts), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )  # fmt: skip
        log.debug("stack starting", extra={"pid": self.child.pid, "log": str(log_path)})
        self.console.print(f"Starting the stack ([dim]fiberflow up, log: {log_path}[/])")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.opts.start_timeout
        last = "no answer yet"
        with self.console.status("Waiting for the stack to be ready…") as status:
            while True:
                self._check_child()
                try:
                    r = httpx.get(f"{self.api_url}/healthz", timeout=3)
                    if r.status_code == 200:
                        break
                    waiting = [k for k, v in r.json().items() if v != "ok"]
                    last = f"waiting for {', '.join(waiting) or 'the stack'}"
                except (httpx.HTTPError, ValueError):
                    pass
                status.update(f"Waiting for the stack to be ready… ({last})")
                if time.monotonic() > deadline:
                    limit = f"{self.opts.start_timeout:.0f} s"
                    raise DemoError(f"the stack was not ready within {limit} ({last})"
                                    + self._log_tail())  # fmt: skip
                time.sleep(0.5)
        self.console.print(f"[green]✓[/] Stack ready: {self.api_url}")

    def _order(self, client: httpx.Client) -> DemoService:
        inventory = _ok(client.get("/api/v1/inventory")).json()
        olt = inventory["olts"][0]
        plans = [p["name"] for p in inventory["plans"]]
        plan = "500M" if "500M" in plans else plans[0]
        board = sorted(olt["boards"])[0]
        customer = f"demo-{secrets.token_hex(3)}"
        body = {
            "customer_ref": customer, "plan": plan, "olt": olt["name"],
            "pon_port": f"{board}/{secrets.randbelow(int(olt['boards'][board]))}",
            # "HWTC" (Huawei) vendor prefix and a random serial: a new ONT every run.
            "ont_serial": "48575443" + secrets.token_hex(4).upper(),
            "description": "demo",
        }  # fmt: skip
        created = _ok(client.post("/api/v1/services", json=body)).json()
        self.console.print(
            f"Ordered [bold]{plan}[/] for customer [bold]{customer}[/] on {olt['name']} "
            f"port {body['pon_port']} (ONT {body['ont_serial']}) — service {created['id']}"
        )
        return DemoService(created["id"], customer)

    def _follow(self, client: httpx.Client, service: DemoService) -> Outcome:
        with ProgressView(self.console) as view:
            try:
                return follow(client, service.id, view, timeout=self.opts.run_timeout)
            except FollowTimeout as exc:
                raise DemoError(f"provisioning did not finish: {exc}") from None

    def _summary(
        self, client: httpx.Client, service: DemoService, outcome: Outcome, key: str
    ) -> None:
        row = _ok(client.get(f"/api/v1/services/{service.id}")).json()
        if outcome.ok:
            self.console.print(
                f"[bold green]✓ Service active[/]: IP {row.get('ip_address')}, "
                f"VLAN {row.get('vlan')}, RADIUS user {row.get('radius_username')}"
            )
        else:
            self.console.print(f"[bold red]✗ Provisioning failed:[/] {outcome.error}")
        token = issue(key, tenant_id=DEMO_TENANT, role="customer", sub=service.customer_ref,
                      ttl=timedelta(hours=12))  # fmt: skip
        ui = str(self.settings.stack.get("ui_url") or f"http://127.0.0.1:{self.opts.prefect_port}")
        self.console.print()
        self.console.print("Customer portal (sign-in link, valid 12 h):")
        # soft_wrap: the link stays on one line, copyable.
        self.console.print(f"  {self.api_url}/portal/login?token={token}", soft_wrap=True)
        self.console.print(f"Prefect UI:  {ui}")
        self.console.print(f"API docs:    {self.api_url}/docs")
        self.console.print("Serving until Ctrl-C.")
        self.failed = not outcome.ok

    def _serve(self) -> None:
        while True:
            self._check_child()
            time.sleep(0.5)

    # -- the child and signals -------------------------------------------------------
    def _check_child(self) -> None:
        if self.child is not None and self.child.poll() is not None:
            code = self.child.returncode
            self.child = None
            raise DemoError(f"fiberflow up exited with {code}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = (self.settings.data_dir / UP_LOG).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n" + "\n".join(lines[-15:]) if lines else ""

    @contextmanager
    def _signals(self) -> Iterator[None]:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # A closed terminal (SIGHUP) stops the stack too, as a SIGTERM: `up` must
            # not outlive the demo that started it.
            forward = signal.SIGTERM if signum == signal.SIGHUP else signum
            if self.pending is None:
                self.pending = forward
                raise Interrupted(forward)

        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {s: signal.signal(s, on_signal) for s in handled}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _stop_child(self, signum: int, outcome: Outcome | None) -> int:
        child, self.child = self.child, None
        self.pending = self.pending or signum  # later signals no longer interrupt
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # forwarded: `up` stops every part it started
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("fiberflow up did not stop; killing its process group")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        return 1 if self.failed or (outcome is not None and not outcome.ok) else 0


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise DemoError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


def run_demo(settings: Settings, opts: DemoOptions, console: Console | None = None) -> int:
    return Demo(settings, opts, console or Console()).run()
