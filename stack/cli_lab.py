"""``fiberflow lab``: the device lab (OLTs, BNG, RADIUS, NAS) and what a test or a demo
does to a running one (plug ONTs, seed services)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fiberflow.core.settings import ConfigError, get_settings
from fiberflow.stack.cli_common import DataDir, fail, setup_logging, use_data_dir

lab_app = typer.Typer(help="Run the device lab (OLTs, BNG, RADIUS, NAS) and write its inventory.")
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

    use_data_dir(data_dir)
    setup_logging()
    s = get_settings()
    target = (inventory or s.data_dir / INVENTORY_FILE).expanduser().absolute()
    if olts is not None and not 1 <= olts <= MAX_OLTS:
        raise fail(f"--olts: must be 1 to {MAX_OLTS}, not {olts}")
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
        raise fail(str(exc)) from None
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
        raise fail(str(exc)) from None
    except (OSError, DeviceError) as exc:
        raise fail(f"the lab could not start: {exc}", code=1) from None


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

    use_data_dir(data_dir)
    try:
        done = plug(get_settings().data_dir, olt, pon_port, serial, rx_power)
    except PlugError as exc:
        raise fail(str(exc)) from None
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

    use_data_dir(data_dir)
    try:
        olts = unplug(get_settings().data_dir, serial, olt)
    except PlugError as exc:
        raise fail(str(exc)) from None
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

    use_data_dir(data_dir)
    s = get_settings()
    started = time.monotonic()
    try:
        done = seed_services(
            s.data_dir, s.effective_database_url(), services, tenant or DEMO_TENANT
        )
    except SeedRefused as exc:
        raise fail(str(exc)) from None
    except SeedFailed as exc:
        raise fail(str(exc), code=1) from None
    spread = ", ".join(f"{name} {count:,}" for name, count in sorted(done.per_device.items()))
    phases = ", ".join(f"{name} {sec:.1f} s" for name, sec in done.seconds.items())
    typer.echo(f"{done.services:,} active services seeded for tenant {done.tenant_id} "
               f"in {time.monotonic() - started:.1f} s ({phases})")  # fmt: skip
    typer.echo(f"  {spread}")
