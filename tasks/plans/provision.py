"""Provisioning's dry run (a new order, before its service row exists): the IPAM
allocations, the ONT and its service-port on the OLT, the BNG sub-interface, the RADIUS
rows, as the provisioning steps would make them now.

The service id does not exist yet, so the RADIUS user shows as ``<customer_ref>.<id>``
(the real run uses the first 8 characters of the new id there); a new user has no rows
to read. The ONT id is the one the OLT would give now (lowest free), the service-port
index is the OLT's own pick (its line names none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiberflow.core.ipam import preview_ip, preview_vlan
from fiberflow.devices.changes import IPAM, RADIUS, Change
from fiberflow.devices.radius.rows import SECRET, row_lines, subscriber_rows
from fiberflow.tasks.plans import readers
from fiberflow.tasks.plans.readers import cli, on
from fiberflow.tasks.provisioning import Order, order_of
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceView

#: Stands for the service id a create has not made yet.
NEW_ID = "<id>"


def new_order(params: Mapping[str, Any]) -> Order:
    """The order a create with these fields would place (OrderInvalid if it cannot)."""
    customer_ref = str(params["customer_ref"])
    svc = ServiceView(
        id=NEW_ID, tenant_id="", customer_ref=customer_ref, status="pending",
        plan=str(params["plan"]), olt=str(params["olt"]), pon_port=str(params["pon_port"]),
        ont_serial=str(params["ont_serial"]), ont_id=None, vlan=None, ip_address=None,
        radius_username=None, description=params.get("description"), flow_run_id=None,
        current_operation=None,
    )  # fmt: skip
    return order_of(svc, f"{customer_ref[:55]}.{NEW_ID}")


def plan(service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    if service_id is not None:
        raise ValueError("provisioning is planned for a new order only")
    o = new_order(params)
    with runtime().sessions() as s:
        ip = preview_ip(s, pool=o.bng, network=o.ip_pool, gateway=o.ip_gateway, service_id=None)
        vlan = preview_vlan(s, scope=o.bng, first=o.vlan_first, last=o.vlan_last, service_id=None)
    olt, bng = readers.olt(o.olt), readers.bng(o.bng)
    ont = on(
        o.olt,
        lambda: olt.add_ont(
            o.pon_port,
            None,
            o.serial,
            o.line_profile_id,
            o.service_profile_id,
            o.description,
            dry_run=True,
        ),
    )
    ont_id = int(str(ont.detail["ont_id"]))
    port = on(
        o.olt, lambda: olt.add_service_port(o.pon_port, ont_id, o.gem_port, vlan, dry_run=True)
    )
    sub = on(
        o.bng,
        lambda: bng.add_subscriber(
            vlan, ip, o.netmask, o.policy_in, o.policy_out, o.description, dry_run=True
        ),
    )
    rows = row_lines(o.radius_username, [], subscriber_rows(SECRET, ip, o.plan, o.netmask))
    return [
        Change(IPAM, "allocation", (f"ip {ip}", f"vlan {vlan}")),
        cli(o.olt, ont),
        cli(o.olt, port),
        cli(o.bng, sub),
        Change(RADIUS, "rows", rows),
    ]
