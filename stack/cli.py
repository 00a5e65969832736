"""The ``fiberflow`` command line. Configuration errors print one line and exit 2."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from fiberflow.core.settings import ConfigError, get_settings

app = typer.Typer(
    name="fiberflow",
    help="Fibre subscriber lifecycle on Prefect, with live progress over SSE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default $FIBERFLOW_DATA_DIR or ./.fiberflow)"),
]

ApiPort = Annotated[int, typer.Option(help="Port of the API and portal")]
PrefectPort = Annotated[int, typer.Option(help="Port of the Prefect server and UI")]


def _use_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["FIBERFLOW_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"fiberflow: {message}", err=True)
    return typer.Exit(code)


def _setup_logging() -> None:
    from fiberflow.core.logs import configure

    s = get_settings()
    configure(s.log_level, s.log_json)


@app.command()
def up(
    api_port: ApiPort = 8000,
    prefect_port: PrefectPort = 4200,
    data_dir: DataDir = None,
) -> None:
    """Run the whole stack in the foreground until Ctrl-C or SIGTERM."""
    from fiberflow.stack.readiness import StackError
    from fiberflow.stack.supervisor import Stack, UpOptions

    _use_data_dir(data_dir)
    _setup_logging()
    try:
        stack = Stack(get_settings(), UpOptions(api_port=api_port, prefect_port=prefect_port))
        code = stack.run(on_ready=_print_ready)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except StackError as exc:
        raise _fail(str(exc), code=1) from None
    raise typer.Exit(code)


def _print_ready(info: dict[str, Any]) -> None:
    typer.echo(f"fiberflow is up (data dir {info['data_dir']})")
    typer.echo(f"  API + portal : {info['api_url']}   (health: {info['api_url']}/healthz)")
    typer.echo(f"  Prefect UI   : {info['ui_url']}")
    typer.echo("Ctrl-C stops everything.")


@app.command()
def api(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    data_dir: DataDir = None,
) -> None:
    """Run the API (REST, SSE relay, portal) alone; joins the `up` stack of --data-dir."""
    _use_data_dir(data_dir)
    _setup_logging()
    s = get_settings()
    prefect_url = s.effective_prefect_api_url()
    if prefect_url:
        os.environ.setdefault("PREFECT_API_URL", prefect_url)
    # Operations go to a real Prefect server or fail with 503: never an ephemeral one,
    # which races and orphans processes under uvicorn.
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    # Imported only now: Prefect reads its settings from the environment once, when it is
    # first imported (the reconciler and the planner import it), so the two above must be
    # set first, or an API joining a stack by its data dir would talk to no server.
    import uvicorn

    from fiberflow.api.app import create_app
    from fiberflow.stack.reconciler import reconciler_job
    from fiberflow.tasks.dry_run import plan

    try:
        application = create_app(s, background=[reconciler_job], planner=plan)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    # timeout_graceful_shutdown bounds shutdown: open SSE streams must not hold it forever.
    uvicorn.run(application, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


@app.command()
def worker(
    data_dir: DataDir = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default: host and pid)")] = None,
) -> None:
    """Start one more Prefect worker against the stack's server (process work pool)."""
    from fiberflow.stack.prefect_env import prefect_env, worker_argv

    _use_data_dir(data_dir)
    s = get_settings()
    api_url = s.effective_prefect_api_url()
    if not api_url:
        raise _fail("PREFECT_API_URL: no Prefect server (start `fiberflow up`, or set it)")
    os.environ.update(prefect_env(s.data_dir, api_url))
    os.environ["FIBERFLOW_DATA_DIR"] = str(s.data_dir)
    argv = worker_argv(name or f"worker-{os.uname().nodename}-{os.getpid()}", s.worker_mode)
    os.execv(argv[0], argv)


@app.command()
def deploy(data_dir: DataDir = None) -> None:
    """Create the work pool, the per-device session limits and the deployments."""
    from fiberflow.devices.inventory import InventoryError, load_inventory

    _use_data_dir(data_dir)
    s = get_settings()
    api_url = s.effective_prefect_api_url()
    if not api_url:
        raise _fail("PREFECT_API_URL: no Prefect server (start `fiberflow up`, or set it)")
    os.environ["PREFECT_API_URL"] = api_url
    # Imported only now: Prefect reads its settings once, at import (see `api`); imported
    # earlier, it registered the deployments with a temporary server of its own.
    from fiberflow.stack.prefect_setup import setup

    path = s.effective_inventory()
    try:
        inventory = load_inventory(path) if path else None
    except InventoryError as exc:
        raise _fail(f"FIBERFLOW_INVENTORY: {exc}") from None
    ids = setup(inventory)
    typer.echo(f"{len(ids)} deployments registered")


lab_app = typer.Typer(help="Run the device lab (OLTs, BNG, RADIUS, NAS) and write its inventory.")
app.add_typer(lab_app, name="lab")
lab_ont_app = typer.Typer(help="Plug ONTs into a running lab's OLTs, or unplug them.")
lab_app.add_typer(lab_ont_app, name="ont")


@lab_app.callback(invoke_without_command=True)
def lab(
    ctx: typer.Context,
    data_dir: DataDir = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory", help="Inventory YAML to write (default DATA_DIR/lab-inventory.yaml)"
        ),
    ] = None,
    olts: Annotated[
        int | None,
        typer.Option(
            "--olts",
            envvar="FIBERFLOW_LAB_OLTS",
            help="OLTs to run: olt-1 and olt-2 share bng-1, each further one has a BNG of "
            "its own (3,900 services per BNG; 7 OLTs hold 23,400). Default: as many as "
            "the saved lab state has, at least 2",
        ),
    ] = None,
) -> None:
    """Run the device lab (OLTs, BNG, RADIUS, NAS) and write its inventory."""
    if ctx.invoked_subcommand is not None:
        return
    import signal
    import threading

    from fiberflow.core.db.migrate import upgrade as run_upgrade
    from fiberflow.devices.base import DeviceError
    from fiberflow.lab.lab_inventory import MAX_OLTS, capacity, probe_writable
    from fiberflow.lab.persist import STATE_FILE, LabStateError
    from fiberflow.lab.runner import INVENTORY_FILE, LAB_FILE, LabStack
    from fiberflow.stack import preflight

    _use_data_dir(data_dir)
    _setup_logging()
    s = get_settings()
    target = (inventory or s.data_dir / INVENTORY_FILE).expanduser().absolute()
    if olts is not None and not 1 <= olts <= MAX_OLTS:
        raise _fail(f"--olts: must be 1 to {MAX_OLTS}, not {olts}")
    try:
        preflight.data_dir(s.data_dir)
        try:
            probe_writable(target)
        except OSError as exc:
            raise ConfigError("--inventory", f"cannot write {target} ({exc.strerror})") from None
        url = s.effective_database_url()
        preflight.database(url)
        run_upgrade(url)  # the lab RADIUS server reads the FreeRADIUS tables
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ready = s.data_dir / LAB_FILE
    ready.unlink(missing_ok=True)  # stale from a killed run: it must mean "ready" only now
    try:
        # The devices' state survives restarts in the data dir (lab/persist.py).
        with LabStack(url, olts=olts, state_file=s.data_dir / STATE_FILE) as running:
            try:
                running.write_inventory(target)
                running.write_ready_file(ready, target)
                for ep in running.endpoints:
                    typer.echo(f"{ep.name:<7} {ep.platform:<15} {ep.host}:{ep.port}/{ep.transport}")
                typer.echo(f"lab inventory: {target} (Ctrl-C stops the lab)")
                typer.echo(f"capacity: {capacity(len(running.olts)):,} services")
                while not stop.wait(0.5):
                    pass
            finally:
                ready.unlink(missing_ok=True)
    except LabStateError as exc:
        raise _fail(str(exc)) from None
    except (OSError, DeviceError) as exc:
        raise _fail(f"the lab could not start: {exc}", code=1) from None


@lab_ont_app.command("plug")
def lab_ont_plug(
    olt: Annotated[str, typer.Option("--olt", help="OLT name, e.g. olt-1")],
    pon_port: Annotated[str, typer.Option("--pon-port", help="PON port F/S/P, e.g. 0/1/3")],
    serial: Annotated[str, typer.Option("--serial", help="ONT serial: 16 hex digits")],
    rx_power: Annotated[
        float | None,
        typer.Option("--rx-power", help="ONT receive power in dBm (default: -22..-18)"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Plug an ONT into a PON port: it shows in `display ont autofind` until registered."""
    from fiberflow.lab.plug_client import PlugError, plug

    _use_data_dir(data_dir)
    try:
        done = plug(get_settings().data_dir, olt, pon_port, serial, rx_power)
    except PlugError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{done['serial']} plugged into {done['olt']} {done['fsp']} "
               f"(rx {done['rx_power_dbm']:.2f} dBm)")  # fmt: skip


@lab_ont_app.command("unplug")
def lab_ont_unplug(
    serial: Annotated[str, typer.Option("--serial", help="ONT serial: 16 hex digits")],
    olt: Annotated[
        str | None, typer.Option("--olt", help="OLT name (default: every OLT of the lab)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Unplug an ONT: it leaves autofind; registered, it goes offline."""
    from fiberflow.lab.plug_client import PlugError, unplug

    _use_data_dir(data_dir)
    try:
        olts = unplug(get_settings().data_dir, serial, olt)
    except PlugError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{serial.upper()} unplugged from {', '.join(olts)}")


@lab_app.command("seed")
def lab_seed(
    services: Annotated[
        int, typer.Option("--services", help="How many active services to write, e.g. 20000")
    ],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Their tenant (a UUID; default the demo's)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write N active services at once, as if each had been provisioned: service rows,
    IP and VLAN allocations and RADIUS rows in the database, ONTs, service-ports and
    sub-interfaces on the running lab's devices. All or nothing."""
    import time

    from fiberflow.lab.seed import SeedFailed, SeedRefused, seed_services
    from fiberflow.stack.demo import DEMO_TENANT

    _use_data_dir(data_dir)
    s = get_settings()
    started = time.monotonic()
    try:
        done = seed_services(
            s.data_dir, s.effective_database_url(), services, tenant or DEMO_TENANT
        )
    except SeedRefused as exc:
        raise _fail(str(exc)) from None
    except SeedFailed as exc:
        raise _fail(str(exc), code=1) from None
    spread = ", ".join(f"{name} {count:,}" for name, count in sorted(done.per_device.items()))
    phases = ", ".join(f"{name} {sec:.1f} s" for name, sec in done.seconds.items())
    typer.echo(f"{done.services:,} active services seeded for tenant {done.tenant_id} "
               f"in {time.monotonic() - started:.1f} s ({phases})")  # fmt: skip
    typer.echo(f"  {spread}")


@app.command()
def demo(
    api_port: ApiPort = 8000,
    prefect_port: PrefectPort = 4200,
    data_dir: DataDir = None,
) -> None:
    """Start the stack, provision a demo subscriber with live progress, print the portal link."""
    from fiberflow.stack.demo import DemoError, DemoOptions, run_demo

    _use_data_dir(data_dir)
    _setup_logging()
    try:
        code = run_demo(get_settings(), DemoOptions(api_port=api_port, prefect_port=prefect_port))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except DemoError as exc:
        raise _fail(str(exc), code=1) from None
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply database migrations up to the newest."""
    from fiberflow.core.db.migrate import upgrade as run_upgrade
    from fiberflow.stack import preflight

    _use_data_dir(data_dir)
    s = get_settings()
    try:
        preflight.data_dir(s.data_dir)
        url = s.effective_database_url()
        preflight.database(url)
        run_upgrade(url)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    typer.echo("database is at the newest schema")


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant id (a UUID)")],
    role: Annotated[str, typer.Option(help="operator or customer")],
    sub: Annotated[str | None, typer.Option(help="Subject: the customer_ref for customers")] = None,
    ttl_hours: Annotated[float, typer.Option(help="Lifetime in hours")] = 12.0,
    data_dir: DataDir = None,
) -> None:
    """Print a signed JWT alone on stdout."""
    from fiberflow.core.tokens import ROLES, issue

    _use_data_dir(data_dir)
    if role not in ROLES:
        raise _fail(f"--role: must be one of {', '.join(ROLES)}")
    if not 0 < ttl_hours <= 24 * 366:
        raise _fail("--ttl-hours: must be between 0 and 8784")
    subject = sub or f"{role}@{tenant}"
    settings = get_settings()  # outside the try: a bad setting is not a bad --tenant
    try:
        key = settings.jwt_key()
        jwt = issue(key, tenant_id=tenant, role=role, sub=subject, ttl=timedelta(hours=ttl_hours))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except ValueError:
        raise _fail(f"--tenant: {tenant!r} is not a UUID") from None
    sys.stdout.write(jwt + "\n")


# Settings whose value is never echoed back in an error (keys, passwords in URLs).
_UNECHOED = ("secret", "key", "password", "token", "url")


def settings_error(exc: ValidationError) -> str:
    """One line naming each bad setting by its environment variable, with what is wrong
    (a value is shown unless it may hold a secret)."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(x) for x in err["loc"])
        name = f"FIBERFLOW_{field.upper()}"
        message = str(err["msg"]).removeprefix("Value error, ")
        if not message.startswith(f"{name}:"):  # core.blackout names itself and the part
            value = err.get("input")
            shown = isinstance(value, str | int | float) and not any(
                word in field for word in _UNECHOED
            )
            message = f"{name}: {value!r}: {message}" if shown else f"{name}: {message}"
        parts.append(message)
    return "; ".join(parts)


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        # Settings are read on first use, in any command: a bad one is a configuration
        # error like any other, one line and exit 2, never a traceback.
        if exc.title != "Settings":
            raise
        typer.echo(f"fiberflow: {settings_error(exc)}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
