"""`fiberflow lab seed`: N active services written at once into the database, a running
lab's devices and the RADIUS tables, as provisioning would have left them; all or
nothing; bad input refused with exit code 2 and nothing written."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from netmiko import ConnectHandler
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import (
    IpAllocation,
    IpPool,
    RadCheck,
    RadReply,
    RadUserGroup,
    ServiceInstance,
    VlanAllocation,
)
from fiberflow.devices.bng.parsing import parse_running_interfaces
from fiberflow.devices.olt import HuaweiOlt
from fiberflow.devices.olt.parsing import parse_ont_detail, parse_service_ports
from fiberflow.devices.radius.client import RadiusClient
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.devices.radius.types import AuthStatus
from fiberflow.lab.admin import admin_call
from fiberflow.lab.seed import SeedFailed, apply_seed, plan_seed
from fiberflow.lab.seed.plan import radius_username
from fiberflow.tasks.provisioning import radius_username as provisioning_username
from tests.fixtures.databases import throwaway_pg_database
from tests.lab.lab_process import LabProcess, start_lab

TENANT = "6b1d3f0e-8c2a-4e57-9f1b-2d4c6e8a0b13"
ANY_PROMPT = r"[>#]\s*$"
TABLES = (ServiceInstance, IpAllocation, VlanAllocation, RadCheck, RadReply, RadUserGroup)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabProcess]:
    """A running `fiberflow lab` (the default two OLTs and bng-1) on either database."""
    with ExitStack() as stack:
        env = {}
        if request.param == "postgres":
            env["FIBERFLOW_DATABASE_URL"] = stack.enter_context(throwaway_pg_database())
        running = start_lab(tmp_path_factory.mktemp("seed") / "data", **env)
        stack.callback(running.stop)
        running.ready()
        yield running


@pytest.fixture
def engine(lab: LabProcess) -> Iterator[Engine]:
    url = lab.env.get("FIBERFLOW_DATABASE_URL") or f"sqlite:///{lab.data_dir / 'fiberflow.db'}"
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _counts(engine: Engine, lab: LabProcess) -> dict[str, Any]:
    """Rows per table, and every device's configuration (what a seed may change)."""
    with Session(engine) as s:
        rows = {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}
    devices = lab.ready()["admin"]["devices"]
    dumps = {name: admin_call(d["port"], "dump") for name, d in devices.items()}
    for dump in dumps.values():
        for ont in dump.get("onts", []):
            ont.pop("online")  # time since activation, not configuration
    return {"rows": rows, "devices": dumps}


def test_username_is_provisionings() -> None:
    ref, sid = "seed-abc123-00042", str(uuid.uuid4())
    assert radius_username(ref, sid) == provisioning_username(ref, sid)
    assert radius_username("x" * 64, sid) == provisioning_username("x" * 64, sid)


def test_seed_2000_services_as_provisioning_leaves_them(lab: LabProcess, engine: Engine) -> None:
    done = lab.cli("lab", "seed", "--services", "2000", "--tenant", TENANT)
    assert done.returncode == 0, done.stderr
    assert "2,000 active services seeded" in done.stdout
    with Session(engine) as s:
        services = s.scalars(
            select(ServiceInstance).where(ServiceInstance.tenant_id == TENANT)
        ).all()
        ips = dict(s.execute(select(IpAllocation.service_id, IpAllocation.address)).all())
        pools = dict(s.execute(select(IpPool.name, IpPool.network)).all())
        vlans = dict(
            s.execute(
                select(VlanAllocation.service_id, VlanAllocation.vlan).where(
                    VlanAllocation.scope == "bng-1"
                )
            ).all()  # fmt: skip
        )
        groups = dict(s.execute(select(RadUserGroup.username, RadUserGroup.groupname)).all())
    assert len(services) == 2000
    assert {(s.status, s.current_operation) for s in services} == {("active", "provisioning")}
    assert len({s.ont_serial for s in services}) == 2000
    assert all(re.fullmatch(r"[0-9A-F]{16}", str(x.ont_serial)) for x in services)
    assert len({(s.olt, s.pon_port, s.ont_id) for s in services}) == 2000
    assert len({s.vlan for s in services}) == 2000  # both OLTs on bng-1: one VLAN space
    assert {s.plan for s in services} == {"100M", "500M", "1G"}
    assert pools["bng-1"] == "100.64.0.0/16"
    for svc in services:
        assert ips[svc.id] == svc.ip_address and vlans[svc.id] == svc.vlan
        assert svc.radius_username == radius_username(svc.customer_ref, svc.id)
        assert groups[svc.radius_username] == svc.plan
        assert 100 <= (svc.vlan or 0) <= 3999 and svc.ip_address != "100.64.0.1"
    inv = lab.inventory
    for svc in random.Random(7).sample(list(services), 6):
        _check_on_devices(lab, svc)
    # The RADIUS server of the lab accepts them with the seeded password.
    store = RadiusStore(engine)
    client = RadiusClient.from_inventory(inv.radius)
    for svc in random.Random(8).sample(list(services), 3):
        sub = store.get(str(svc.radius_username))
        assert sub is not None and sub.password
        assert (sub.ip_address, sub.netmask, sub.groups) == (svc.ip_address, "255.255.0.0",
                                                             (svc.plan,))  # fmt: skip
        auth = client.authenticate(sub.username, sub.password)
        assert auth.status is AuthStatus.ACCEPT and auth.framed_ip == svc.ip_address


def _check_on_devices(lab: LabProcess, svc: ServiceInstance) -> None:
    """The service as stock netmiko reads it off the OLT and the BNG."""
    inv = lab.inventory
    olt, bng = inv.olt(svc.olt), inv.bng_for(svc.olt)
    plan = inv.plan(svc.plan)
    f, s, p = svc.pon_port.split("/")
    desc = f"ff-{svc.customer_ref}"
    with ConnectHandler(device_type="huawei_olt", host=olt.host, port=olt.port, username="lab",
                        password="lab", use_keys=False) as conn:  # fmt: skip
        conn.enable()
        ont = parse_ont_detail(str(conn.send_command(f"display ont info {f} {s} {p} {svc.ont_id}")))
        ports = parse_service_ports(
            str(conn.send_command(f"display service-port port {svc.pon_port} ont {svc.ont_id}"))
        )
    assert ont is not None
    assert (ont.serial, ont.description, ont.control_flag) == (svc.ont_serial, desc, "active")
    assert (ont.line_profile_id, ont.service_profile_id) == (plan.line_profile_id,
                                                             plan.service_profile_id)  # fmt: skip
    assert [(sp.vlan, sp.gem_port, sp.user_vlan) for sp in ports] == [
        (svc.vlan, plan.gem_port, svc.vlan)]  # fmt: skip
    # The receive power provisioning would have measured, as the driver reads it.
    optics = HuaweiOlt(olt).get_optical_info(svc.pon_port, int(svc.ont_id or 0))
    assert optics is not None and optics.rx_power_dbm == svc.ont_rx_power_dbm
    with ConnectHandler(device_type="cisco_ios", host=bng.host, port=bng.port, username="lab",
                        password="lab", secret="", use_keys=False) as conn:  # fmt: skip
        conn.enable()
        name = f"{bng.uplink}.{svc.vlan}"
        (sub,) = parse_running_interfaces(
            str(conn.send_command(f"show running-config interface {name}"))
        )
    assert (sub.name, sub.vlan, sub.inner_vlan, sub.description) == (name, svc.vlan, None, desc)
    assert (sub.ip_address, sub.netmask) == (svc.ip_address, "255.255.0.0")
    assert (sub.policy_in, sub.policy_out) == (plan.policy_in, plan.policy_out)


def test_a_bng_refusing_rolls_every_store_back(lab: LabProcess, engine: Engine) -> None:
    url = str(engine.url.render_as_string(hide_password=False))
    plan = plan_seed(lab.data_dir, url, 300, TENANT)
    # Between planning and writing, someone configures one of the planned VLANs by hand.
    clash = plan.services[-1]
    port = lab.ready()["admin"]["devices"]["bng-1"]["port"]
    hand_made = {"name": clash.interface, "description": "by-hand", "outer_vlan": clash.vlan}
    assert admin_call(port, "seed", subinterfaces=[hand_made])["subinterfaces"] == 1
    before = _counts(engine, lab)
    with pytest.raises(SeedFailed, match=rf"bng-1 refused its seed: {clash.interface} exists"):
        apply_seed(plan)
    assert _counts(engine, lab) == before  # the OLTs took theirs first: unseeded again
    admin_call(port, "unseed", subinterfaces=[hand_made])


def test_a_database_refusal_leaves_the_devices_alone(lab: LabProcess, engine: Engine) -> None:
    url = str(engine.url.render_as_string(hide_password=False))
    plan = plan_seed(lab.data_dir, url, 300, TENANT)
    clash = plan.services[0]
    with engine.begin() as conn:  # a provisioning allocates the same VLAN meanwhile
        conn.execute(
            text("INSERT INTO vlan_allocations (scope, vlan, service_id, allocated_at) "
                 "VALUES ('bng-1', :v, 'other', CURRENT_TIMESTAMP)"), {"v": clash.vlan}
        )  # fmt: skip
    before = _counts(engine, lab)
    with pytest.raises(SeedFailed, match="database: .*nothing was written"):
        apply_seed(plan)
    assert _counts(engine, lab) == before
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM vlan_allocations WHERE service_id = 'other'"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--services", "50000"], r"--services: 50,000 services do not fit the running lab, "
                                  r"which has room for [\d,]+ more \(bng-1: [\d,]+ free VLANs"),
        (["--services", "0"], "--services: must be at least 1, not 0"),
        (["--services", "-5"], "--services: must be at least 1, not -5"),
        (["--services", "3", "--tenant", "acme"], "--tenant: 'acme' is not a UUID"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_nothing_written(
    lab: LabProcess, engine: Engine, args: list[str], message: str
) -> None:
    before = _counts(engine, lab)
    done = lab.cli("lab", "seed", *args)
    assert done.returncode == 2, done.stderr
    assert re.match(f"fiberflow: {message}", done.stderr), done.stderr
    assert done.stderr.count("\n") == 1 and not done.stdout  # one line, no traceback
    assert _counts(engine, lab) == before


def test_no_running_lab(tmp_path: Path, lab: LabProcess) -> None:
    data_dir = tmp_path / "none"
    data_dir.mkdir()
    done = lab.cli("lab", "seed", "--services", "3")  # a lab runs: the control case
    assert done.returncode == 0, done.stderr
    for ready in (None, '{"pid": 999999999, "admin": {}}', "{half"):
        if ready is not None:
            (data_dir / "lab.json").write_text(ready)
        other = LabProcess(lab.proc, data_dir, {**lab.env, "FIBERFLOW_DATA_DIR": str(data_dir)},
                           lab.log)  # fmt: skip
        done = other.cli("lab", "seed", "--services", "3")
        assert done.returncode == 2
        assert (
            done.stderr.startswith("fiberflow: no running lab: ") and str(data_dir) in done.stderr
        )
