"""The ``fiberflow`` command line. Configuration errors print one line and exit 2."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from fiberflow.core.settings import ConfigError, get_settings
from fiberflow.stack.cli_common import (
    ApiPort,
    DataDir,
    PrefectPort,
    fail,
    setup_logging,
    use_data_dir,
)
from fiberflow.stack.cli_lab import lab_app

app = typer.Typer(
    name="fiberflow",
    help="Fibre subscriber lifecycle on Prefect, with live progress over SSE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(lab_app, name="lab")  # stack/cli_lab.py


@app.command()
def up(
    api_port: ApiPort = 8000,
    prefect_port: PrefectPort = 4200,
    data_dir: DataDir = None,
) -> None:
    """Run the whole stack in the foreground until Ctrl-C or SIGTERM."""
    from fiberflow.stack.readiness import StackError
    from fiberflow.stack.supervisor import Stack, UpOptions

    use_data_dir(data_dir)
    setup_logging()
    try:
        stack = Stack(get_settings(), UpOptions(api_port=api_port, prefect_port=prefect_port))
        code = stack.run(on_ready=_print_ready)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except StackError as exc:
        raise fail(str(exc), code=1) from None
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
    use_data_dir(data_dir)
    setup_logging()
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
        raise fail(str(exc)) from None
    # timeout_graceful_shutdown bounds shutdown: open SSE streams must not hold it forever.
    uvicorn.run(application, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


@app.command()
def worker(
    data_dir: DataDir = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default: host and pid)")] = None,
) -> None:
    """Start one more Prefect worker against the stack's server (process work pool)."""
    from fiberflow.stack.prefect_env import prefect_env, worker_argv

    use_data_dir(data_dir)
    s = get_settings()
    api_url = s.effective_prefect_api_url()
    if not api_url:
        raise fail("PREFECT_API_URL: no Prefect server (start `fiberflow up`, or set it)")
    os.environ.update(prefect_env(s.data_dir, api_url))
    os.environ["FIBERFLOW_DATA_DIR"] = str(s.data_dir)
    argv = worker_argv(name or f"worker-{os.uname().nodename}-{os.getpid()}", s.worker_mode)
    os.execv(argv[0], argv)


@app.command()
def deploy(data_dir: DataDir = None) -> None:
    """Create the work pool, the per-device session limits and the deployments."""
    from fiberflow.devices.inventory import InventoryError, load_inventory

    use_data_dir(data_dir)
    s = get_settings()
    api_url = s.effective_prefect_api_url()
    if not api_url:
        raise fail("PREFECT_API_URL: no Prefect server (start `fiberflow up`, or set it)")
    os.environ["PREFECT_API_URL"] = api_url
    # Imported only now: Prefect reads its settings once, at import (see `api`); imported
    # earlier, it registered the deployments with a temporary server of its own.
    from fiberflow.stack.prefect_setup import setup

    path = s.effective_inventory()
    try:
        inventory = load_inventory(path) if path else None
    except InventoryError as exc:
        raise fail(f"FIBERFLOW_INVENTORY: {exc}") from None
    ids = setup(inventory)
    typer.echo(f"{len(ids)} deployments registered")


@app.command()
def demo(
    api_port: ApiPort = 8000,
    prefect_port: PrefectPort = 4200,
    data_dir: DataDir = None,
) -> None:
    """Start the stack, provision a demo subscriber with live progress, print the portal link."""
    from fiberflow.stack.demo import DemoError, DemoOptions, run_demo

    use_data_dir(data_dir)
    setup_logging()
    try:
        code = run_demo(get_settings(), DemoOptions(api_port=api_port, prefect_port=prefect_port))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except DemoError as exc:
        raise fail(str(exc), code=1) from None
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply database migrations up to the newest."""
    from fiberflow.core.db.migrate import upgrade as run_upgrade
    from fiberflow.stack import preflight

    use_data_dir(data_dir)
    s = get_settings()
    try:
        preflight.data_dir(s.data_dir)
        url = s.effective_database_url()
        preflight.database(url)
        run_upgrade(url)
    except ConfigError as exc:
        raise fail(str(exc)) from None
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

    use_data_dir(data_dir)
    if role not in ROLES:
        raise fail(f"--role: must be one of {', '.join(ROLES)}")
    if not 0 < ttl_hours <= 24 * 366:
        raise fail("--ttl-hours: must be between 0 and 8784")
    subject = sub or f"{role}@{tenant}"
    settings = get_settings()  # outside the try: a bad setting is not a bad --tenant
    try:
        key = settings.jwt_key()
        jwt = issue(key, tenant_id=tenant, role=role, sub=subject, ttl=timedelta(hours=ttl_hours))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except ValueError:
        raise fail(f"--tenant: {tenant!r} is not a UUID") from None
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
