"""RadiusStore against real databases (SQLite and PostgreSQL via the ``engine`` fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fiberflow.core.db.models.radius import RadCheck, RadGroupReply, RadReply, RadUserGroup
from fiberflow.devices.base import CommandRecord, InvalidInput, PermanentDeviceError
from fiberflow.devices.inventory import Plan
from fiberflow.devices.radius import SUSPENDED_GROUP, RadiusStore, ReplyAttribute

PLANS = [
    Plan(
        name="100M",
        download_kbps=100_000,
        upload_kbps=50_000,
        policy_in="PLAN-100M-IN",
        policy_out="PLAN-100M-OUT",
    ),
    Plan(
        name="1G",
        download_kbps=1_000_000,
        upload_kbps=500_000,
        policy_in="PLAN-1G-IN",
        policy_out="PLAN-1G-OUT",
    ),
]

INJECTIONS = [
    "a\nb",
    "a;b",
    "a'b",
    'a"b',
    "a\x00b",
    "x" * 300,
    "",
    "a b",
    "a' OR '1'='1",
]


def _count(engine: Engine) -> int:
    with Session(engine) as s:
        return sum(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (RadCheck, RadReply, RadUserGroup, RadGroupReply)
        )


def test_activate_writes_rows_and_is_idempotent(engine: Engine) -> None:
    audit: list[CommandRecord] = []
    store = RadiusStore(engine, audit=audit.append)
    first = store.activate("sub-1@fibre", "s3cret!Pw", "100.64.0.10", "100M")
    assert first.changed
    assert "s3cret" not in first.diff and "Cleartext-Password := ***" in first.diff
    again = store.activate("sub-1@fibre", "s3cret!Pw", "100.64.0.10", "100M")
    assert not again.changed

    with Session(engine) as s:
        checks = s.scalars(select(RadCheck)).all()
        assert [(c.username, c.attribute, c.op, c.value) for c in checks] == [
            ("sub-1@fibre", "Cleartext-Password", ":=", "s3cret!Pw")
        ]
        replies = s.scalars(select(RadReply)).all()
        assert [(r.attribute, r.op, r.value) for r in replies] == [
            ("Framed-IP-Address", ":=", "100.64.0.10")
        ]
        groups = s.scalars(select(RadUserGroup)).all()
        assert [(g.username, g.groupname, g.priority) for g in groups] == [
            ("sub-1@fibre", "100M", 1)
        ]
    # The audit trail never carries the password.
    assert len(audit) == 2
    assert all("s3cret" not in r.command + r.output for r in audit)


def test_activate_updates_changed_values(engine: Engine) -> None:
    store = RadiusStore(engine)
    store.activate("sub-2", "pw-one", "100.64.0.11", "100M")
    result = store.activate("sub-2", "pw-two", "100.64.0.12", "1G", netmask="255.255.255.255")
    assert result.changed
    sub = store.get("sub-2")
    assert sub is not None
    assert (sub.password, sub.ip_address, sub.netmask, sub.groups) == (
        "pw-two",
        "100.64.0.12",
        "255.255.255.255",
        ("1G",),
    )
    assert "pw-two" not in repr(sub)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(RadCheck)) == 1
        assert s.scalar(select(func.count()).select_from(RadUserGroup)) == 1


def test_set_group_and_remove(engine: Engine) -> None:
    store = RadiusStore(engine)
    store.activate("sub-3", "pw", "100.64.0.13", "100M")
    assert store.set_group("sub-3", SUSPENDED_GROUP).changed
    assert not store.set_group("sub-3", SUSPENDED_GROUP).changed
    sub = store.get("sub-3")
    assert sub is not None and sub.suspended and sub.group == SUSPENDED_GROUP
    assert store.set_group("sub-3", "100M").changed
    assert store.remove("sub-3").changed
    assert store.get("sub-3") is None
    assert not store.remove("sub-3").changed
    assert _count(engine) == 0


def test_set_group_of_unknown_user_fails(engine: Engine) -> None:
    store = RadiusStore(engine)
    with pytest.raises(PermanentDeviceError):
        store.set_group("nobody", SUSPENDED_GROUP)
    assert _count(engine) == 0


def test_activate_keeps_rows_an_operator_added(engine: Engine) -> None:
    store = RadiusStore(engine)
    with Session(engine) as s, s.begin():
        s.add(RadReply(username="sub-4", attribute="Session-Timeout", op=":=", value="86400"))
    store.activate("sub-4", "pw", "100.64.0.14", "100M")
    sub = store.get("sub-4")
    assert sub is not None
    assert sub.extra_reply == (ReplyAttribute("Session-Timeout", ":=", "86400"),)
    store.remove("sub-4")
    assert store.get("sub-4") is None


def test_ensure_groups(engine: Engine) -> None:
    store = RadiusStore(engine)
    assert store.ensure_groups(PLANS, "WALLED-GARDEN").changed
    assert not store.ensure_groups(PLANS, "WALLED-GARDEN").changed
    with Session(engine) as s:
        rows = s.scalars(select(RadGroupReply).order_by(RadGroupReply.id)).all()
    by_group: dict[str, list[tuple[str, str, str]]] = {}
    for r in rows:
        by_group.setdefault(r.groupname, []).append((r.attribute, r.op, r.value))
    assert by_group["100M"] == [
        ("Cisco-AVPair", "+=", "ip:sub-qos-policy-in=PLAN-100M-IN"),
        ("Cisco-AVPair", "+=", "ip:sub-qos-policy-out=PLAN-100M-OUT"),
    ]
    assert by_group[SUSPENDED_GROUP] == [
        ("Cisco-AVPair", "+=", "ip:sub-qos-policy-in=WALLED-GARDEN"),
        ("Cisco-AVPair", "+=", "ip:sub-qos-policy-out=WALLED-GARDEN"),
        ("Cisco-Account-Info", ":=", "AWALLED-GARDEN"),
    ]
    # A changed walled-garden name rewrites only that group.
    result = store.ensure_groups(PLANS, "WG-2")
    assert result.detail["changed"] == [SUSPENDED_GROUP]


@pytest.mark.parametrize("bad", INJECTIONS)
def test_injection_strings_raise_before_any_sql(engine: Engine, bad: str) -> None:
    store = RadiusStore(engine)
    calls = [
        lambda: store.activate(bad, "pw", "100.64.0.20", "100M"),
        lambda: store.activate("ok-user", bad, "100.64.0.20", "100M"),
        lambda: store.activate("ok-user", "pw", bad, "100M"),
        lambda: store.activate("ok-user", "pw", "100.64.0.20", bad),
        lambda: store.activate("ok-user", "pw", "100.64.0.20", "100M", netmask=bad),
        lambda: store.set_group(bad, "100M"),
        lambda: store.set_group("ok-user", bad),
        lambda: store.remove(bad),
        lambda: store.get(bad),
        lambda: store.ensure_groups(PLANS, bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    assert _count(engine) == 0


def test_no_half_written_rows_when_the_transaction_fails(engine: Engine) -> None:
    """A failure after the first INSERT rolls everything back (one transaction)."""
    from sqlalchemy import event

    store = RadiusStore(engine)
    store.activate("sub-5", "old-pw", "100.64.0.15", "100M")

    def boom(_mapper: object, _conn: object, target: RadUserGroup) -> None:
        raise RuntimeError("disk full")

    event.listen(RadUserGroup, "before_insert", boom)
    try:
        with pytest.raises(RuntimeError):
            store.activate("sub-5", "new-pw", "100.64.0.16", "1G")
    finally:
        event.remove(RadUserGroup, "before_insert", boom)
    sub = store.get("sub-5")
    assert sub is not None
    assert (sub.password, sub.ip_address, sub.groups) == ("old-pw", "100.64.0.15", ("100M",))
