"""The fleet drift check through ``fiberflow up``: N seeded services, a fraction of them
drifted by hand, the nightly deployment ``reprovision-nightly`` (the drift check) run once.

1. ``fiberflow lab seed`` (lab/seed) writes N active services at once into the database,
   the lab's OLTs and BNGs and the RADIUS tables (enough OLTs started for N);
2. ``--drift`` of them drift, five kinds in turn, typed by hand on the devices over SSH
   as an engineer would (``no interface X``, ``service-policy input`` changed, ``undo
   service-port N``, ``ont delete``) or as SQL behind the system's back (the RADIUS
   rows of the user deleted);
3. lab latency per CLI line (``--latency``, default 200 ms), then one run of
   ``drift-check/reprovision-nightly``, sampled while it runs; then a second check at
   latency 0 must find nothing left to repair.

Figures: wall time, services checked per second, devices read (and the CLI logins and
lines each device served: fixed per device, whatever N), drifted / repaired / failed,
peak RSS of the worker's flow-run processes, orphans.

    .venv/bin/python -m bench.drift_check [--small] [--services 20000] [--latency 0.2]
        [--drift 0.01] [--output FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from netmiko import ConnectHandler
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bench.report import DEFAULT_OUTPUT, Section, Table, num
from bench.reprovision_run import Sampler, Stack
from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import (
    DeviceCommandAudit,
    DriftCheck,
    RadReply,
    RadUserGroup,
    ServiceInstance,
)
from fiberflow.devices.inventory import load_inventory
from fiberflow.lab.harness import running_stack, wait_healthy
from fiberflow.lab.lab_inventory import capacity
from fiberflow.lab.seed.run import seed_services

NIGHTLY = "drift-check/reprovision-nightly"
TENANT = "7d1c5a4e-2b8f-4c6a-9e3d-5f1a2b3c4d5e"
KINDS = ("sub-interface removed", "input policy changed", "service-port undone", "ONT deleted",
         "RADIUS rows deleted")  # fmt: skip


def _olts_for(n: int) -> int:
    return next(k for k in range(2, 64) if capacity(k) >= n)


def _drift(stack: Stack, inv_path: str, picked: list[ServiceInstance]) -> dict[str, str]:
    """Drift each picked service, the kinds in turn; one console session per device."""
    inv = load_inventory(inv_path)
    typed: dict[str, list[str]] = {}
    sql_users: list[str] = []
    kinds: dict[str, str] = {}
    dumps = {o.name: stack.lab.call(o.name, "dump") for o in inv.olts}
    for n, svc in enumerate(picked):
        kind = KINDS[n % len(KINDS)]
        kinds[svc.id] = kind
        bng = inv.bng_for(svc.olt)
        subif = f"{bng.uplink}.{svc.vlan}"
        index = next(sp["index"] for sp in dumps[svc.olt]["service_ports"]
                     if (sp["fsp"], sp["ont_id"]) == (svc.pon_port, svc.ont_id))  # fmt: skip
        f, s, p = svc.pon_port.split("/")
        policy = inv.plan(svc.plan).policy_in
        lines = {
            KINDS[0]: (bng.name, [f"no interface {subif}"]),
            KINDS[1]: (bng.name, [f"interface {subif}", f"no service-policy input {policy}",
                                  "service-policy input BENCH-DRIFT-IN", "exit"]),
            KINDS[2]: (svc.olt, [f"undo service-port {index}"]),
            KINDS[3]: (svc.olt, [f"undo service-port {index}", f"interface gpon {f}/{s}",
                                 f"ont delete {p} {svc.ont_id}", "quit"]),
        }.get(kind)  # fmt: skip
        if lines is None:
            sql_users.append(str(svc.radius_username))
        else:
            typed.setdefault(lines[0], []).extend(lines[1])
    for device, cmds in typed.items():
        kind = "huawei_olt" if any(o.name == device for o in inv.olts) else "cisco_ios"
        where = stack.lab.devices[device]
        conn = ConnectHandler(device_type=kind, host=where["host"], port=int(where["port"]),
                              username="lab", password="lab", secret="", use_keys=False,
                              allow_agent=False)  # fmt: skip
        try:
            conn.enable()
            conn.send_config_set(cmds, cmd_verify=False, read_timeout=600)
        finally:
            conn.disconnect()
    engine = make_engine(stack.database_url)
    with engine.begin() as db:
        for model in (RadReply, RadUserGroup):
            db.execute(delete(model).where(model.username.in_(sql_users)))
    engine.dispose()
    return kinds


def _report_of(database_url: str, flow_run_id: str) -> dict[str, Any]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            row = s.scalars(select(DriftCheck).where(DriftCheck.flow_run_id == flow_run_id)).first()
            if row is None:
                return {}
            return {"status": row.status, "error": row.error, **(row.report or {})}
    finally:
        engine.dispose()


def _reads(database_url: str) -> dict[str, dict[str, int]]:
    """Per device, what the check's own reads sent (audit rows of step ``drift-check``):
    sessions (one ``enable`` each) and command lines, repairs left out."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            q = select(DeviceCommandAudit.device, DeviceCommandAudit.command).where(
                DeviceCommandAudit.step == "drift-check"
            )
            out: dict[str, dict[str, int]] = {}
            for device, command in s.execute(q):
                c = out.setdefault(device, {"sessions": 0, "commands": 0})
                c["commands"] += 1
                c["sessions"] += command == "enable"
            return out
    finally:
        engine.dispose()


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    stop = threading.Event()
    olts = _olts_for(args.services)
    with running_stack(tmp, FIBERFLOW_LAB_OLTS=str(olts)) as up:
        wait_healthy(up.api_url, up.proc, timeout=300)

        def low_memory() -> None:
            stop.set()
            up.proc.send_signal(signal.SIGTERM)

        stack = Stack(up.data_dir, up.info(), stop)
        t0 = time.monotonic()
        seed_services(up.data_dir, stack.database_url, args.services, TENANT)
        seed_s = time.monotonic() - t0
        engine = make_engine(stack.database_url)
        with Session(engine, expire_on_commit=False) as s:
            rows = list(s.scalars(select(ServiceInstance).order_by(ServiceInstance.id)))
        engine.dispose()
        k = max(1, round(len(rows) * args.drift))
        picked = random.Random(args.seed).sample(rows, k)
        kinds = _drift(stack, stack.lab.inventory_path, picked)

        stack.set_latency(args.latency)
        stack.lab.all("reset_counters")
        with Sampler(int(stack.info["children"]["worker"]), low_memory) as sampler:
            started = time.monotonic()
            run_id = stack.start(NIGHTLY, {})
            run = stack.wait(run_id, args.timeout)
            wall = time.monotonic() - started
        counters = stack.lab.all("counters")
        report = _report_of(stack.database_url, run_id)
        reads = _reads(stack.database_url)
        after: dict[str, Any] = {}
        if not stop.is_set():  # everything repaired? a second check must find nothing
            stack.set_latency(0.0)
            again = stack.start(NIGHTLY, {})
            stack.wait(again, args.timeout)
            after = _report_of(stack.database_url, again)
    checked = int(report.get("services_checked", 0))
    return {
        "services": len(rows), "olts": olts, "latency": args.latency, "seed_s": seed_s,
        "state": str((run.get("state") or {}).get("type", "unknown")), "wall_s": wall,
        "services_per_s": checked / wall if wall else math.nan, "report": report,
        "drifted_ids": sorted(kinds), "kinds": kinds, "lab": counters, "reads": reads,
        "peak_worker_rss_mb": max(sampler.rss_mb.values(), default=math.nan),
        "after": {key: after.get(key) for key in ("status", "services_checked", "drifted")},
        "low_memory": stop.is_set(),
    }  # fmt: skip


def report(d: dict[str, Any]) -> Section:
    r = d["report"]
    section = Section("Fleet drift check")
    t = Table(["services", "drifted (hand-typed)", "latency", "wall s", "services/s",
               "devices read", "repaired", "failed", "orphans", "peak worker RSS MB"])  # fmt: skip
    t.add(num(d["services"]), num(len(d["drifted_ids"])), f"{d['latency']:g} s",
          num(d["wall_s"]), num(d["services_per_s"]), num(len(r.get("devices_read", []))),
          num(r.get("repaired", 0)), num(r.get("failed", 0)), num(len(r.get("orphans", []))),
          num(d["peak_worker_rss_mb"]))  # fmt: skip
    section.tables.append(("", t))
    lab = Table(["device", "read: sessions", "read: lines", "run: CLI logins", "run: CLI lines",
                 "peak sessions"])  # fmt: skip
    for name, c in sorted(d["lab"].items()):
        read = d["reads"].get(name, {})
        cells = (read.get("sessions", 0), read.get("commands", 0), c["logins"], c["commands"])
        lab.add(name, *(num(int(v)) for v in cells), num(int(c["peak_open"])))
    caption = ("Per lab device: the check's reads (fixed, whatever the number of services), "
               "and everything the run sent, repairs included:")  # fmt: skip
    section.tables.append((caption, lab))
    section.notes.append(f"{d['olts']} OLTs; seeding took {d['seed_s']:.1f} s; run {d['state']}")
    errors = []
    if d["state"] != "COMPLETED" or r.get("status") != "completed":
        errors.append(f"run ended {d['state']} / report {r.get('status')}: {r.get('error')}")
    if {x["service_id"] for x in r.get("drifted", [])} != set(d["drifted_ids"]):
        errors.append("the drifted services found are not the ones drifted")
    if d["after"].get("drifted"):
        errors.append(f"{len(d['after']['drifted'])} services still drifted after the run")
    section.notes += errors
    section.data = {**d, "errors": errors}
    return section


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        section = report(measure(args, Path(tmp)))
    section.save(args.output, args.json)
    return section


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.drift_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny run: 20 services, 5 drifted")
    ap.add_argument("--services", type=int, default=20000, help="active services seeded")
    ap.add_argument("--drift", type=float, default=0.01, help="fraction of them drifted")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument("--timeout", type=float, default=7200.0, help="bound on one run, s")
    ap.add_argument("--seed", type=int, default=7, help="which services drift")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(services=20, drift=0.25, latency=0.0, timeout=600.0)
        args = ap.parse_args(argv)
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
