"""What each RADIUS group replies with: per-plan QoS and the walled garden.

The BNG is a Cisco IOS-XE box running ISG (Intelligent Services Gateway). For ISG the
per-session QoS is pushed as Cisco VSAs (vendor 9, attribute 1 Cisco-AVPair):

- ``ip:sub-qos-policy-in=<policy-map>`` / ``ip:sub-qos-policy-out=<policy-map>`` apply
  the plan's input / output policy-map to the session. These are the same policy-map
  names (``Plan.policy_in`` / ``policy_out``) the BNG driver configures on the
  subscriber sub-interface, so RADIUS and CLI agree.
- The walled garden (group ``suspended``) swaps both policies for the walled-garden
  policy-map and activates the ISG service of the same name with
  ``Cisco-Account-Info = "A<service>"`` (ISG: "A" = auto-activate service); that
  service is where the BNG keeps its L4-redirect to the captive portal.

Cisco-AVPair rows use op ``+=`` (FreeRADIUS appends: an attribute may repeat), single
attributes ``:=``. A CoA that moves a live session between groups carries the same
attributes (``coa_attributes``).
"""

from __future__ import annotations

from collections.abc import Iterable

from fiberflow.devices import validation
from fiberflow.devices.inventory import Plan
from fiberflow.devices.radius.types import SUSPENDED_GROUP, ReplyAttribute


def plan_reply(plan: Plan) -> tuple[ReplyAttribute, ...]:
    policy_in = validation.policy(plan.policy_in)
    policy_out = validation.policy(plan.policy_out)
    return (
        ReplyAttribute("Cisco-AVPair", "+=", f"ip:sub-qos-policy-in={policy_in}"),
        ReplyAttribute("Cisco-AVPair", "+=", f"ip:sub-qos-policy-out={policy_out}"),
    )


def walled_garden_reply(walled_garden: str) -> tuple[ReplyAttribute, ...]:
    name = validation.policy(walled_garden)
    return (
        ReplyAttribute("Cisco-AVPair", "+=", f"ip:sub-qos-policy-in={name}"),
        ReplyAttribute("Cisco-AVPair", "+=", f"ip:sub-qos-policy-out={name}"),
        ReplyAttribute("Cisco-Account-Info", ":=", f"A{name}"),
    )


def group_replies(
    plans: Iterable[Plan], walled_garden: str
) -> dict[str, tuple[ReplyAttribute, ...]]:
    """radgroupreply rows by group: one group per plan (named as the plan) + suspended."""
    groups: dict[str, tuple[ReplyAttribute, ...]] = {}
    for plan in plans:
        groups[validation.group(plan.name)] = plan_reply(plan)
    groups[SUSPENDED_GROUP] = walled_garden_reply(walled_garden)
    return groups


def coa_attributes(reply: Iterable[ReplyAttribute]) -> dict[str, tuple[str, ...]]:
    """Group reply rows as CoA-Request attributes (name -> values), e.g. for suspension."""
    out: dict[str, list[str]] = {}
    for row in reply:
        out.setdefault(row.attribute, []).append(row.value)
    return {name: tuple(values) for name, values in out.items()}
