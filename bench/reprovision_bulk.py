"""Bulk reprovisioning through ``fiberflow up`` (issue #7): N active services, a fraction
of them drifted in the lab, and the nightly deployment ``reprovision-nightly`` run once.

1. seed N ACTIVE services without provisioning flows: the service rows, IP and VLAN
   through fiberflow's allocators (core/ipam.py), the RADIUS rows through its store
   (devices/radius/sql.py), and the ONTs, service-ports and BNG sub-interfaces through
   the lab's ``seed`` admin op (the state the CLI path makes; tests/devices/lab);
2. drift ``--drift`` of them, four kinds in turn: ONT deleted on the OLT, BNG
   sub-interface removed, RADIUS Framed-IP-Address changed, BNG input policy changed;
3. lab latency per command, then one run of ``reprovision-all/reprovision-nightly``.

Baselines in the same stack: the same bulk run at latency 0 (the orchestration floor;
the same drift is put back first), and one service's reprovisioning alone (an in-sync
one and a drifted one, through the ``reprovision`` deployment).

Figures: wall time, services in_sync / repaired / failed / not run, per-service duration
(its first reprovisioning event -> its completed/failed event) and completion (trigger ->
that event) p50/p95/max, device time (sum of the audited command durations), overhead per
service (duration minus device time), peak CLI sessions per lab device, CPU and RSS of the
flow-run process. At the end of each run every service's OLT, BNG and RADIUS state is
compared with its database row (lab ``dump``): drift left over is an error.

    .venv/bin/python -m bench.reprovision_bulk [--small] [--services 1000] [--latency 0.2]
        [--drift 0.1] [--no-floor] [--output FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import random
import secrets
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bench.report import DEFAULT_OUTPUT, Dist, Section, Table, load_average, num
from bench.sampling import BackgroundSampler
from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import (
    DeviceCommandAudit,
    EventLog,
    RadReply,
    ServiceInstance,
    ServiceStatus,
)
from fiberflow.core.ipam import allocate_ip, allocate_vlan
from fiberflow.devices import validation
from fiberflow.devices.inventory import Inventory, load_inventory
from fiberflow.devices.radius.sql import IP_ATTR, RadiusStore
from fiberflow.lab.admin import admin_call
from tests.fixtures.stack import running_stack, wait_healthy

log = logging.getLogger(__name__)
TENANT = "7c0f4b1e-2a55-4d0e-9a61-3f8e2b6d9c21"
MIN_AVAILABLE_GIB = 3.0  # below this the benchmark stops the stack (shared machine)
BULK = "reprovision-all/reprovision-nightly"
ONE = "reprovision/reprovision"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DRIFT_KINDS = ("olt.ont", "bng.sub-interface", "radius.ip_address", "bng.policy_in")
DRIFT_LABEL = {
    "olt.ont": "ONT deleted on the OLT (with its service-port)",
    "bng.sub-interface": "BNG sub-interface removed",
    "radius.ip_address": "RADIUS Framed-IP-Address changed",
    "bng.policy_in": "BNG input service-policy changed",
}
SEED_CHUNK = 50  # services per admin ``seed`` request (one SSH exec line each)
PORTS = [f"0/{slot}/{p}" for slot in (1, 2) for p in range(16)]


# --- the services ------------------------------------------------------------------------


@dataclass
class Svc:
    """One seeded service: its database row and what the devices must hold for it."""

    id: str
    customer_ref: str
    plan: str
    olt: str
    pon_port: str
    serial: str
    ont_id: int
    username: str
    description: str
    bng: str = ""
    uplink: str = ""
    vlan: int = 0
    ip: str = ""
    netmask: str = ""
    line_profile_id: int = 0
    gem_port: int = 0
    policy_in: str = ""
    policy_out: str = ""
    drift: str | None = None

    @property
    def interface(self) -> str:
        return f"{self.uplink}.{self.vlan}"


def radius_username(customer_ref: str, service_id: str) -> str:
    """As provisioning names the subscriber (tasks.provisioning.radius_username)."""
    from fiberflow.tasks.provisioning import radius_username as name

    return name(customer_ref, service_id)


def plan_services(n: int, inv: Inventory) -> list[Svc]:
    """N services over both OLTs' 32 PON ports, ONT ids from 0 per port (what the OLT
    picks first), plans in turn; serials and ids random."""
    olts = [o.name for o in inv.olts]
    plans = [p.name for p in inv.plans]
    next_id: Counter[tuple[str, str]] = Counter()
    out = []
    for i in range(n):
        olt = olts[i % len(olts)]
        port = PORTS[(i // len(olts)) % len(PORTS)]
        sid, ref = str(uuid.uuid4()), f"bulk-{i}"
        ont_id = next_id[(olt, port)]
        next_id[(olt, port)] += 1
        out.append(
            Svc(id=sid, customer_ref=ref, plan=plans[i % len(plans)], olt=olt, pon_port=port,
                serial=uuid.uuid4().hex[:16].upper(), ont_id=ont_id,
                username=radius_username(ref, sid),
                description=validation.description(f"ff-{ref}"[:64]))
        )  # fmt: skip
    return out


def seed_database(database_url: str, inv: Inventory, services: list[Svc]) -> None:
    """Service rows (active) with their IP and VLAN from core.ipam, then RADIUS rows."""
    engine = make_engine(database_url)
    try:
        for start in range(0, len(services), 100):
            with Session(engine) as s, s.begin():
                for svc in services[start : start + 100]:
                    olt, plan = inv.olt(svc.olt), inv.plan(svc.plan)
                    bng = inv.bng(olt.bng)
                    row = ServiceInstance(
                        id=svc.id, tenant_id=TENANT, customer_ref=svc.customer_ref,
                        status=ServiceStatus.ACTIVE.value, current_operation="provisioning",
                        plan=svc.plan, olt=svc.olt, pon_port=svc.pon_port,
                        ont_serial=svc.serial, ont_id=svc.ont_id,
                        radius_username=svc.username,
                    )  # fmt: skip
                    s.add(row)
                    svc.ip = allocate_ip(s, pool=bng.name, network=bng.ip_pool,
                                         gateway=bng.ip_gateway, service_id=svc.id)  # fmt: skip
                    svc.vlan = allocate_vlan(s, scope=bng.name, first=olt.vlan_first,
                                             last=olt.vlan_last, service_id=svc.id)  # fmt: skip
                    row.ip_address, row.vlan = svc.ip, svc.vlan
                    svc.bng, svc.uplink = bng.name, bng.uplink
                    svc.netmask = str(ipaddress.ip_network(bng.ip_pool).netmask)
                    svc.line_profile_id, svc.gem_port = plan.line_profile_id, plan.gem_port
                    svc.policy_in, svc.policy_out = plan.policy_in, plan.policy_out
        store = RadiusStore(engine, name="bench-seed")
        for svc in services:
            store.activate(svc.username, secrets.token_urlsafe(18), svc.ip, svc.plan,
                           netmask=svc.netmask)  # fmt: skip
    finally:
        engine.dispose()


class Lab:
    """The running lab's devices over the admin channel (lab.json)."""

    def __init__(self, data_dir: Path) -> None:
        info = json.loads((data_dir / "lab.json").read_text())
        self.devices: dict[str, dict[str, Any]] = info["admin"]["devices"]
        self.inventory_path = info["inventory"]

    def call(self, device: str, op: str, **args: Any) -> Any:
        dev = self.devices[device]
        return admin_call(int(dev["port"]), op, host=dev["host"], **args)

    def all(self, op: str, **args: Any) -> dict[str, Any]:
        return {name: self.call(name, op, **args) for name in self.devices}


def seed_lab(lab: Lab, services: list[Svc]) -> None:
    """ONT + service-port per service on its OLT, its sub-interface on the BNG."""
    by_olt: dict[str, list[Svc]] = {}
    for svc in services:
        by_olt.setdefault(svc.olt, []).append(svc)
    failures: list[str] = []
    for olt, svcs in by_olt.items():
        for start in range(0, len(svcs), SEED_CHUNK):
            chunk = svcs[start : start + SEED_CHUNK]
            onts = [{"fsp": s.pon_port, "ont_id": s.ont_id, "serial": s.serial,
                     "description": s.description, "line_profile_id": s.line_profile_id,
                     "service_profile_id": s.line_profile_id} for s in chunk]  # fmt: skip
            sps = [{"fsp": s.pon_port, "ont_id": s.ont_id, "gem_port": s.gem_port,
                    "vlan": s.vlan} for s in chunk]  # fmt: skip
            failures += lab.call(olt, "seed", onts=onts, service_ports=sps)["failures"]
    by_bng: dict[str, list[Svc]] = {}
    for svc in services:
        by_bng.setdefault(svc.bng, []).append(svc)
    for bng, svcs in by_bng.items():
        for start in range(0, len(svcs), SEED_CHUNK):
            chunk = svcs[start : start + SEED_CHUNK]
            subs = [{"name": s.interface, "description": s.description, "outer_vlan": s.vlan,
                     "ip_address": s.ip, "netmask": s.netmask, "policy_in": s.policy_in,
                     "policy_out": s.policy_out} for s in chunk]  # fmt: skip
            failures += lab.call(bng, "seed", subinterfaces=subs)["failures"]
    if failures:
        raise RuntimeError(f"lab seed refused {len(failures)}: {failures[:5]}")


# --- drift and verification ---------------------------------------------------------------


def apply_drift(lab: Lab, database_url: str, services: list[Svc]) -> None:
    """Each drifted service gets its kind of drift (behind fiberflow's back)."""
    engine = make_engine(database_url)
    try:
        for svc in services:
            if svc.drift == "olt.ont":
                assert lab.call(svc.olt, "delete_ont", fsp=svc.pon_port, ont_id=svc.ont_id)[
                    "deleted"
                ]
            elif svc.drift == "bng.sub-interface":
                assert lab.call(svc.bng, "remove_interface", interface=svc.interface)["removed"]
            elif svc.drift == "bng.policy_in":
                other = "PLAN-X-IN"
                assert lab.call(svc.bng, "set_policy", interface=svc.interface,
                                direction="input", policy=other)["ok"]  # fmt: skip
            elif svc.drift == "radius.ip_address":
                with Session(engine) as s, s.begin():
                    s.execute(
                        update(RadReply)
                        .where(RadReply.username == svc.username, RadReply.attribute == IP_ATTR)
                        .values(value="100.64.255.254")
                    )
    finally:
        engine.dispose()


def verify(lab: Lab, database_url: str, services: list[Svc]) -> dict[str, list[str]]:
    """Per service whose devices or RADIUS rows differ from its row: what differs."""
    onts: dict[tuple[str, str, int], dict[str, Any]] = {}
    sps: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    subs: dict[str, dict[str, Any]] = {}
    for name, dump in lab.all("dump").items():
        for o in dump.get("onts", []):
            onts[(name, o["fsp"], o["ont_id"])] = o
        for sp in dump.get("service_ports", []):
            sps.setdefault((name, sp["fsp"], sp["ont_id"]), []).append(sp)
        for sub in dump.get("subinterfaces", []):
            subs[sub["name"]] = sub
    engine = make_engine(database_url)
    store = RadiusStore(engine, name="bench-verify")
    bad: dict[str, list[str]] = {}
    try:
        with Session(engine) as s:
            status = dict(
                s.execute(
                    select(ServiceInstance.id, ServiceInstance.status).where(
                        ServiceInstance.id.in_([x.id for x in services])
                    )
                ).all()
            )
        for svc in services:
            diff = []
            key = (svc.olt, svc.pon_port, svc.ont_id)
            o = onts.get(key)
            if o is None or (o["serial"], o["active"], o["description"]) != (
                svc.serial, True, svc.description
            ):  # fmt: skip
                diff.append(f"ont {o and (o['serial'], o['active'], o['description'])}")
            if not any((p["vlan"], p["gem_port"]) == (svc.vlan, svc.gem_port)
                       for p in sps.get(key, [])):  # fmt: skip
                diff.append("service-port")
            sub = subs.get(svc.interface)
            want = (svc.vlan, svc.ip, svc.netmask, svc.policy_in, svc.policy_out, svc.description)
            have = sub and (sub["outer_vlan"], sub["ip_address"], sub["netmask"],
                            sub["policy_in"], sub["policy_out"], sub["description"])  # fmt: skip
            if have != want:
                diff.append(f"sub-interface {sub}")
            rad = store.get(svc.username)
            if rad is None or (rad.ip_address, rad.netmask, list(rad.groups)) != (
                svc.ip, svc.netmask, [svc.plan]
            ) or not rad.password:  # fmt: skip
                diff.append(f"radius {rad and (rad.ip_address, rad.netmask, rad.groups)}")
            if status.get(svc.id) != ServiceStatus.ACTIVE.value:
                diff.append(f"status {status.get(svc.id)}")
            if diff:
                bad[svc.id] = diff
    finally:
        engine.dispose()
    return bad


# --- one run, and what it did ------------------------------------------------------------


@dataclass
class Sampler(BackgroundSampler):
    """Every 0.5 s: the worker's descendants (CPU, RSS, threads per pid) and available
    memory; below the floor it stops the stack."""

    worker_pid: int
    on_low_memory: Any
    cpu_s: dict[int, float] = field(default_factory=dict)
    rss_mb: dict[int, float] = field(default_factory=dict)
    threads: dict[int, int] = field(default_factory=dict)
    low_memory: bool = False
    min_available_gib: float = MIN_AVAILABLE_GIB

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(5)

    def _loop(self) -> None:
        try:
            worker = psutil.Process(self.worker_pid)
        except psutil.Error:
            return
        while not self._stop.wait(0.5):
            try:
                procs = worker.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    with p.oneshot():
                        t, rss, nt = p.cpu_times(), p.memory_info().rss, p.num_threads()
                except psutil.Error:
                    continue
                self.cpu_s[p.pid] = t.user + t.system
                self.rss_mb[p.pid] = max(self.rss_mb.get(p.pid, 0.0), rss / 2**20)
                self.threads[p.pid] = max(self.threads.get(p.pid, 0), nt)
            if psutil.virtual_memory().available / 2**30 < self.min_available_gib:
                self.low_memory = True
                self.on_low_memory()
                return


@dataclass
class Outcome:
    """One service in one run, from its events and the audit log."""

    service_id: str
    result: str  # in_sync | repaired | failed | not run
    started: float | None = None  # first reprovisioning event's timestamp
    ended: float | None = None  # completed_at / failed_at
    device_s: float = 0.0
    commands: int = 0
    flow_run_id: str | None = None
    error: str | None = None
    #: (status, event timestamp) of each progress event, in order
    steps: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class RunFigures:
    label: str
    latency: float
    services: int
    flow_run_id: str
    state: str
    triggered: float
    finished: float
    prefect_start: float | None
    prefect_end: float | None
    outcomes: list[Outcome]
    lab: dict[str, dict[str, int]]
    run_pid: int | None
    run_cpu_s: float | None
    run_rss_mb: float | None
    run_threads: int | None
    stack_cpu_s: dict[str, float]
    load: str
    bad_after: dict[str, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        c = Counter(o.result for o in self.outcomes)
        return {k: c.get(k, 0) for k in ("in_sync", "repaired", "failed", "not run")}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _high_water(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            ev = s.scalar(select(func.max(EventLog.id))) or 0
            au = s.scalar(select(func.max(DeviceCommandAudit.id))) or 0
    finally:
        engine.dispose()
    return ev, au


def outcomes_since(
    database_url: str, marks: tuple[int, int], service_ids: list[str]
) -> tuple[list[Outcome], set[int]]:
    """Each service's reprovisioning events and audited commands after ``marks``, and
    the pids of the flow-run processes that ran them (each records host:pid on its row)."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            events = s.execute(
                select(EventLog.service_id, EventLog.event_type, EventLog.data)
                .where(EventLog.id > marks[0], EventLog.operation == "reprovisioning")
                .order_by(EventLog.id)
            ).all()
            audits = s.execute(
                select(DeviceCommandAudit.service_id, DeviceCommandAudit.step,
                       DeviceCommandAudit.duration_ms, DeviceCommandAudit.ok)
                .where(DeviceCommandAudit.id > marks[1])
            ).all()  # fmt: skip
            run_pids = dict(
                s.execute(
                    select(ServiceInstance.id, ServiceInstance.run_process).where(
                        ServiceInstance.id.in_(service_ids)
                    )
                ).all()
            )
    finally:
        engine.dispose()
    out = {sid: Outcome(sid, "not run") for sid in service_ids}
    repairing: set[str] = set()
    for sid, step, ms, _ok in audits:
        o = out.get(str(sid))
        if o is None:
            continue
        o.device_s += float(ms or 0) / 1000
        o.commands += 1
        if step == "repairing":
            repairing.add(o.service_id)
    for sid, kind, data in events:
        o = out.get(str(sid))
        if o is None:
            continue
        o.flow_run_id = data.get("flow_run_id") or o.flow_run_id
        if kind.endswith(".progress"):
            o.steps.append((str(data["status"]), _ts(data["timestamp"])))
            o.started = o.steps[0][1]
        elif kind.endswith(".completed"):
            o.ended, o.result = _ts(data["completed_at"]), "completed"
        elif kind.endswith(".failed"):
            o.ended, o.result, o.error = _ts(data["failed_at"]), "failed", data.get("error")
    for o in out.values():
        if o.result == "completed":
            o.result = "repaired" if o.service_id in repairing else "in_sync"
    result = list(out.values())
    result.sort(key=lambda o: o.ended or float("inf"))
    pids = {int(str(p).rsplit(":", 1)[-1]) for p in run_pids.values() if p}
    return result, pids


class Stack:
    """What a run needs of the running stack."""

    def __init__(self, data_dir: Path, info: dict[str, Any], stop: threading.Event) -> None:
        self.data_dir = data_dir
        self.info = info
        self.api = str(info["prefect_api_url"])
        self.database_url = str(info["database_url"])
        self.lab = Lab(data_dir)
        self.stop = stop
        self.http = httpx.Client(base_url=self.api, timeout=30)

    def set_latency(self, latency: float) -> None:
        self.lab.all("faults", latency=latency)

    def start(self, deployment: str, parameters: dict[str, Any]) -> str:
        dep = self.http.get(f"/deployments/name/{deployment}")
        dep.raise_for_status()
        resp = self.http.post(
            f"/deployments/{dep.json()['id']}/create_flow_run", json={"parameters": parameters}
        )
        resp.raise_for_status()
        return str(resp.json()["id"])

    def wait(self, flow_run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        for _ in range(int(timeout / 0.5) + 2):  # bounded in count and in time
            run = self.http.get(f"/flow_runs/{flow_run_id}").json()
            if (run.get("state") or {}).get("type") in TERMINAL:
                return run
            if time.monotonic() > deadline or self.stop.is_set():
                break
            time.sleep(0.5)
        return run

    def stack_cpu(self) -> dict[str, float]:
        out = {}
        for name, pid in self.info.get("children", {}).items():
            try:
                t = psutil.Process(int(pid)).cpu_times()
            except psutil.Error:
                continue
            out[name] = t.user + t.system
        return out


def one_run(
    stack: Stack,
    label: str,
    latency: float,
    services: list[Svc],
    deployment: str,
    parameters: dict[str, Any],
    timeout: float,
    low_memory: Any,
) -> tuple[RunFigures, Sampler]:
    stack.set_latency(latency)
    stack.lab.all("reset_counters")
    marks = _high_water(stack.database_url)
    cpu0 = stack.stack_cpu()
    load = load_average()
    with Sampler(int(stack.info["children"]["worker"]), low_memory) as sampler:
        triggered = time.time()
        run_id = stack.start(deployment, parameters)
        run = stack.wait(run_id, timeout)
        finished = time.time()
    cpu1 = stack.stack_cpu()
    ids = [s.id for s in services]
    outcomes, pids = outcomes_since(stack.database_url, marks, ids)
    counters = stack.lab.all("counters")
    pid = next(iter(pids)) if len(pids) == 1 else None
    start, end = run.get("start_time"), run.get("end_time")
    figures = RunFigures(
        label=label,
        latency=latency,
        services=len(services),
        flow_run_id=run_id,
        state=str((run.get("state") or {}).get("type", "unknown")),
        triggered=triggered,
        finished=finished,
        prefect_start=_ts(start) if start else None,
        prefect_end=_ts(end) if end else None,
        outcomes=outcomes,
        lab=counters,
        run_pid=pid,
        run_cpu_s=sampler.cpu_s.get(pid) if pid else None,
        run_rss_mb=sampler.rss_mb.get(pid) if pid else None,
        run_threads=sampler.threads.get(pid) if pid else None,
        stack_cpu_s={k: cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0},
        load=load,
    )
    return figures, sampler


# --- the table ------------------------------------------------------------------------------

HEADERS = [
    "run",
    "in_sync / repaired / failed / not run",
    "wall s (trigger → run ended)",
    "flow run s (Prefect start → end)",
    "per service p50 / p95 / max s",
    "completion p50 / p95 / max s",
    "in flight (avg)",
    "device s / service p50",
    "overhead / service p50 / p95 s",
    "device s total: audited / lab-served",
    "peak CLI sessions",
    "run proc CPU s / RSS MB / threads",
    "load avg",
]


def row(f: RunFigures) -> list[str]:
    done = [o for o in f.outcomes if o.ended is not None]
    per = Dist.of(o.ended - o.started for o in done if o.started is not None and o.ended)
    completion = Dist.of((o.ended or 0) - f.triggered for o in done)
    dev = Dist.of(o.device_s for o in done)
    overhead = Dist.of(
        o.ended - o.started - o.device_s for o in done if o.started is not None and o.ended
    )
    c = f.counts()
    busy = sum(o.ended - o.started for o in done if o.started is not None and o.ended)
    peak = " / ".join(f"{n} {v['peak_open']}" for n, v in sorted(f.lab.items()))
    served = sum(float(v.get("latency_s", 0)) for v in f.lab.values())
    flow_s = (f.prefect_end - f.prefect_start) if f.prefect_start and f.prefect_end else None
    proc = (
        f"{num(f.run_cpu_s, 1)} / {num(f.run_rss_mb, 0)} / {f.run_threads or '—'}"
        if f.run_pid
        else "—"
    )
    return [
        f.label,
        f"{c['in_sync']} / {c['repaired']} / {c['failed']} / {c['not run']}",
        num(f.finished - f.triggered, 1),
        num(flow_s, 1),
        f"{num(per.p50, 2)} / {num(per.p95, 2)} / {num(per.max, 2)}",
        f"{num(completion.p50, 1)} / {num(completion.p95, 1)} / {num(completion.max, 1)}",
        num(busy / (f.finished - f.triggered), 1),
        num(dev.p50, 2),
        f"{num(overhead.p50, 2)} / {num(overhead.p95, 2)}",
        f"{num(sum(o.device_s for o in f.outcomes), 1)} / {num(served, 1)}",
        peak,
        proc,
        f.load,
    ]


def step_seconds(o: Outcome) -> dict[str, float]:
    """Seconds from each step's first progress event to the next (the last step to the
    completed/failed event)."""
    firsts: list[tuple[str, float]] = []
    for status, ts in o.steps:
        if status not in {st for st, _ in firsts}:
            firsts.append((status, ts))
    ends = [ts for _, ts in firsts[1:]] + ([o.ended] if o.ended else [])
    return {st: end - ts for (st, ts), end in zip(firsts, ends, strict=False)}


def steps_table(runs: list[RunFigures]) -> Table:
    names: list[str] = []
    per_run = []
    for f in runs:
        values: dict[str, list[float]] = {}
        for o in f.outcomes:
            for name, sec in step_seconds(o).items():
                values.setdefault(name, []).append(sec)
                if name not in names:
                    names.append(name)
        per_run.append(values)
    t = Table(["step (p50 / p95 s)", *(f.label for f in runs)])
    for name in names:
        cells = []
        for v in per_run:
            d = Dist.of(v.get(name, []))
            cells.append(f"{num(d.p50, 2)} / {num(d.p95, 2)}")
        t.add(name, *cells)
    return t


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="bench.reprovision_bulk", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--small", action="store_true", help="tiny run: 6 services, 2 drifted")
    ap.add_argument("--services", type=int, default=1000, help="active services seeded")
    ap.add_argument("--drift", type=float, default=0.1, help="fraction of them drifted")
    ap.add_argument("--latency", type=float, default=0.2, help="lab per-command latency, s")
    ap.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                    help="also the bulk run at latency 0 (not when --latency is 0)")  # fmt: skip
    ap.add_argument("--timeout", type=float, default=3600.0, help="bound on one bulk run, s")
    ap.add_argument("--seed", type=int, default=7, help="which services drift")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to append to")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.small:  # tiny defaults; options given explicitly still win
        ap.set_defaults(services=6, drift=2 / 6, latency=0.0, timeout=300.0)
        args = ap.parse_args(argv)
    return args


@dataclass
class Measured:
    runs: list[RunFigures]
    services: list[Svc]
    seed_s: float
    drifted_bad: dict[str, list[str]]
    low_memory: bool
    errors: list[str]


def measure(args: argparse.Namespace, tmp: Path) -> Measured:
    stop = threading.Event()
    runs: list[RunFigures] = []
    errors: list[str] = []
    with running_stack(tmp) as up:
        wait_healthy(up.api_url, up.proc, timeout=300)

        def low_memory() -> None:
            stop.set()
            up.proc.send_signal(signal.SIGTERM)

        stack = Stack(up.data_dir, up.info(), stop)
        inv = load_inventory(stack.lab.inventory_path)
        t0 = time.monotonic()
        services = plan_services(args.services, inv)
        seed_database(stack.database_url, inv, services)
        seed_lab(stack.lab, services)
        seed_s = time.monotonic() - t0
        if bad := verify(stack.lab, stack.database_url, services):
            raise RuntimeError(f"seeding left {len(bad)} inconsistent: {list(bad.items())[:3]}")
        k = round(len(services) * args.drift)
        rng = random.Random(args.seed)
        for n, svc in enumerate(rng.sample(services, k)):
            svc.drift = DRIFT_KINDS[n % len(DRIFT_KINDS)]
        drifted = [s for s in services if s.drift]
        apply_drift(stack.lab, stack.database_url, drifted)
        drifted_bad = verify(stack.lab, stack.database_url, services)

        def bulk(label: str, latency: float) -> None:
            f, sampler = one_run(stack, label, latency, services, BULK, {}, args.timeout,
                                 low_memory)  # fmt: skip
            f.bad_after = verify(stack.lab, stack.database_url, services)
            runs.append(f)

        n, pct = len(services), args.drift * 100
        bulk(f"{n:,} services, {len(drifted)} drifted ({pct:.0f} %), "
             f"latency {args.latency:g} s", args.latency)  # fmt: skip
        if not stop.is_set():  # baselines: one service alone, in sync then drifted
            in_sync = next(s for s in services if not s.drift)
            alone = [(in_sync, "in sync")] + [(drifted[0], "drifted")] * bool(drifted)
            for svc, what in alone:
                if stop.is_set():
                    break
                apply_drift(stack.lab, stack.database_url, [svc])
                f, _ = one_run(stack, f"1 service alone ({what}), latency {args.latency:g} s",
                               args.latency, [svc], ONE, {"service_id": svc.id}, 300,
                               low_memory)  # fmt: skip
                f.bad_after = verify(stack.lab, stack.database_url, [svc])
                runs.append(f)
        if args.floor and args.latency > 0 and not stop.is_set():
            apply_drift(stack.lab, stack.database_url, drifted)
            bulk(f"same {n:,} services and drift, latency 0 (orchestration floor)", 0.0)
        for f in runs:
            if f.state != "COMPLETED":
                errors.append(f"{f.label}: flow run {f.flow_run_id} ended {f.state}")
            if f.bad_after:
                sample = list(f.bad_after.items())[:3]
                errors.append(f"{f.label}: {len(f.bad_after)} services still differ: {sample}")
    return Measured(runs, services, seed_s, drifted_bad, stop.is_set(), errors)


def main(argv: list[str] | None = None) -> Section:
    args = parse_args(argv)
    section = Section("Bulk reprovisioning")
    with tempfile.TemporaryDirectory(prefix="bench-reprov-") as tmp:
        m = measure(args, Path(tmp))
    table = Table(HEADERS)
    for f in m.runs:
        table.rows.append(row(f))
    section.tables.append(
        (
            f"`fiberflow up` on embedded defaults (SQLite, local Prefect server, warm worker), "
            f"the lab at the given per-command latency, per-device session limit from the "
            f"lab inventory (4). Bulk = one run of `{BULK}` (NIGHTLY_PARALLELISM services at "
            f"a time, one subflow each, one flow-run process). Per service = its first "
            f"reprovisioning event → its completed/failed event; completion = trigger → that "
            f"event; in flight = Σ per service / wall (the nightly run allows 8); "
            f"overhead = per service − its audited device time. Audited device time "
            f"leaves out SSH login and netmiko's session set-up; lab-served is all the latency "
            f"the lab injected (every delayed line, set-up included).",
            table,
        )
    )
    section.tables.append(
        (
            "Where a service's time goes: from one step's first progress event to the next "
            "(checking = read OLT, BNG, RADIUS; repairing = re-apply + read again, or nothing "
            "when in sync; completed = the row and the completed event):",
            steps_table(m.runs),
        )
    )
    drift = Table(["drift", "services", "seen before the run", "left after each bulk run"])
    bulk_runs = [f for f in m.runs if f.services == len(m.services)]
    for kind in DRIFT_KINDS:
        ids = {s.id for s in m.services if s.drift == kind}
        left = " / ".join(str(len(ids & set(f.bad_after))) for f in bulk_runs)
        drift.add(DRIFT_LABEL[kind], len(ids), len(ids & set(m.drifted_bad)), left or "—")
    section.tables.append(("Drift seeded, and checked against the lab's `dump`:", drift))
    section.notes.append(
        f"seeding {len(m.services):,} services (rows, IPAM, RADIUS, lab `seed`): {m.seed_s:.1f} s"
    )
    for f in bulk_runs:
        lab = ", ".join(f"{n}: {v['logins']} logins, {v['commands']} lines, "
                        f"{v.get('latency_s', 0):.0f} s latency served"
                        for n, v in sorted(f.lab.items()))  # fmt: skip
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(f.stack_cpu_s.items()))
        section.notes.append(f"{f.label}: lab {lab}; CPU s of the stack's parts: {cpu}")
    for e in m.errors:
        section.notes.append(f"ERROR {e}"[:800])
    if m.low_memory:
        section.notes.append(f"stopped early: available memory fell below {MIN_AVAILABLE_GIB} GiB")
    section.data = {
        "services": len(m.services),
        "drift": {k: sum(s.drift == k for s in m.services) for k in DRIFT_KINDS},
        "drifted_ids": [s.id for s in m.services if s.drift],
        "drifted_seen_before": sorted(m.drifted_bad),
        "seed_s": m.seed_s,
        "errors": m.errors,
        "low_memory": m.low_memory,
        "runs": [
            {
                **{k: v for k, v in asdict(f).items() if k != "outcomes"},
                "counts": f.counts(),
                "outcomes": [asdict(o) for o in f.outcomes],
            }
            for f in m.runs
        ],  # fmt: skip
    }
    section.save(args.output, args.json)
    return section


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
