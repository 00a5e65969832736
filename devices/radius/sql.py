"""Subscriber rows in FreeRADIUS's standard rlm_sql schema (the one place devices/ uses SQL).

An unmodified FreeRADIUS ``sql`` module reads what this writes, and a change takes
effect on the next Access-Request (no restart):

- ``radcheck``      ``<user> Cleartext-Password := <password>``
- ``radreply``      ``<user> Framed-IP-Address := <ip>`` (+ ``Framed-IP-Netmask`` if given)
- ``radusergroup``  ``<user> -> <plan>`` or ``suspended`` (priority 1)
- ``radgroupreply`` per-plan and walled-garden attributes (``ensure_groups``, see policy.py)

The store owns these managed rows of a username: activate() replaces them; rows an
operator added by hand for the same user (e.g. ``Simultaneous-Use`` in radcheck, other
radreply attributes) are left alone, except that remove() deletes every row of the user.
Every operation validates all values first (InvalidInput before any SQL) and runs in one
transaction, so a failure leaves no half-written rows. A write's change is rendered as
row lines first (rows.py; ``Result.lines``, ``Result.diff`` and the audit say the same);
``dry_run=True`` reads and renders the same, and writes nothing. On PostgreSQL a transaction-scoped
advisory lock per username serializes concurrent writers; SQLite's ``BEGIN IMMEDIATE``
(core.db.engine) already does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.core.db.models.radius import RadCheck, RadGroupReply, RadReply, RadUserGroup
from fiberflow.devices import validation
from fiberflow.devices.base import (
    AuditSink,
    CommandRecord,
    PermanentDeviceError,
    Result,
    TransientDeviceError,
    no_audit,
)
from fiberflow.devices.inventory import Plan
from fiberflow.devices.radius.policy import group_replies
from fiberflow.devices.radius.rows import IP_ATTR as IP_ATTR
from fiberflow.devices.radius.rows import MASK_ATTR as MASK_ATTR
from fiberflow.devices.radius.rows import PASSWORD_ATTR as PASSWORD_ATTR
from fiberflow.devices.radius.rows import (
    Row,
    row_lines,
    subscriber_rows,
)
from fiberflow.devices.radius.types import RadiusSubscriber, ReplyAttribute

logger = logging.getLogger(__name__)

_MANAGED_REPLY = (IP_ATTR, MASK_ATTR)


class RadiusStore:
    """Writes and reads subscriber rows. Takes an Engine or a sessionmaker."""

    def __init__(
        self,
        db: Engine | sessionmaker[Session],
        *,
        name: str = "radius-sql",
        audit: AuditSink = no_audit,
    ) -> None:
        self._sessions = sessionmaker(db, expire_on_commit=False) if isinstance(db, Engine) else db
        self.name = name
        self._audit = audit

    # -- writes -----------------------------------------------------------------------
    def activate(
        self,
        username: str,
        password: str,
        ip: str,
        plan: str,
        *,
        netmask: str | None = None,
        dry_run: bool = False,
    ) -> Result:
        """Create or update the subscriber's rows; a no-op when they already match."""
        username = validation.username(username)
        password = validation.radius_password(password)
        ip = validation.ipv4("ip", ip)
        plan = validation.group(plan)
        mask = validation.ipv4_mask(netmask) if netmask is not None else None
        desired = subscriber_rows(password, ip, plan, mask)
        started = time.monotonic()
        with self._tx(username, lock=not dry_run) as s:
            current = self._managed_rows(s, username)
            lines = row_lines(username, current, desired)
            if sorted(current) == sorted(desired):
                result = Result(changed=False, detail={"username": username, "group": plan})
            elif dry_run:
                return _planned(lines, {"username": username, "group": plan, "ip": ip})
            else:
                self._delete_managed(s, username)
                s.add(RadCheck(username=username, attribute=PASSWORD_ATTR, op=":=", value=password))
                s.add(RadReply(username=username, attribute=IP_ATTR, op=":=", value=ip))
                if mask is not None:
                    s.add(RadReply(username=username, attribute=MASK_ATTR, op=":=", value=mask))
                s.add(RadUserGroup(username=username, groupname=plan, priority=1))
                result = _planned(lines, {"username": username, "group": plan, "ip": ip})
        self._record(f"activate {username} ip={ip} group={plan}", result, started)
        return result

    def set_group(self, username: str, group: str, *, dry_run: bool = False) -> Result:
        """Move the subscriber to another group (a plan, or ``suspended``)."""
        username = validation.username(username)
        group = validation.group(group)
        started = time.monotonic()
        with self._tx(username, lock=not dry_run) as s:
            if not s.scalars(select(RadCheck.id).where(RadCheck.username == username)).first():
                raise PermanentDeviceError(self.name, f"no RADIUS subscriber {username!r}")
            current = [
                ("radusergroup", "group", str(g.priority), g.groupname)
                for g in s.scalars(select(RadUserGroup).where(RadUserGroup.username == username))
            ]
            desired: list[Row] = [("radusergroup", "group", "1", group)]
            detail: dict[str, object] = {"username": username, "group": group}
            if [r[3] for r in current] == [group]:
                result = Result(changed=False, detail=detail)
            elif dry_run:
                return _planned(row_lines(username, current, desired), detail)
            else:
                s.execute(delete(RadUserGroup).where(RadUserGroup.username == username))
                s.add(RadUserGroup(username=username, groupname=group, priority=1))
                result = _planned(row_lines(username, current, desired), detail)
        self._record(f"set_group {username} group={group}", result, started)
        return result

    def remove(self, username: str, *, dry_run: bool = False) -> Result:
        """Delete every row of the subscriber; a no-op when there are none."""
        username = validation.username(username)
        started = time.monotonic()
        with self._tx(username, lock=not dry_run) as s:
            lines = row_lines(username, self._all_rows(s, username), [])
            if not dry_run:
                for model in (RadCheck, RadReply, RadUserGroup):
                    s.execute(delete(model).where(model.username == username))
        detail: dict[str, object] = {"username": username, "rows": len(lines)}
        result = _planned(lines, detail) if lines else Result(changed=False, detail=detail)
        if not dry_run:
            self._record(f"remove {username}", result, started)
        return result

    def ensure_groups(self, plans: Iterable[Plan], walled_garden: str) -> Result:
        """Write the radgroupreply rows of every plan group and of ``suspended``."""
        wanted = group_replies(plans, walled_garden)
        for rows in wanted.values():
            for row in rows:
                validation.radius_attribute(row.attribute)
                validation.radius_value(row.attribute, row.value)
        started = time.monotonic()
        changed: list[str] = []
        with self._tx("radgroupreply") as s:
            for group, rows in wanted.items():
                current = s.scalars(
                    select(RadGroupReply)
                    .where(RadGroupReply.groupname == group)
                    .order_by(RadGroupReply.id)
                ).all()
                if [ReplyAttribute(r.attribute, r.op, r.value) for r in current] == list(rows):
                    continue
                s.execute(delete(RadGroupReply).where(RadGroupReply.groupname == group))
                for row in rows:
                    s.add(
                        RadGroupReply(
                            groupname=group, attribute=row.attribute, op=row.op, value=row.value
                        )
                    )
                changed.append(group)
        result = Result(
            changed=bool(changed),
            diff="".join(f"~ radgroupreply {g}\n" for g in changed),
            detail={"groups": sorted(wanted), "changed": changed},
        )
        self._record("ensure_groups " + ",".join(sorted(wanted)), result, started)
        return result

    # -- reads ------------------------------------------------------------------------
    def get(self, username: str) -> RadiusSubscriber | None:
        """The subscriber as the tables hold it, or None when no row names it."""
        username = validation.username(username)
        with self._tx(username, lock=False) as s:
            checks = s.scalars(
                select(RadCheck).where(RadCheck.username == username).order_by(RadCheck.id)
            ).all()
            replies = s.scalars(
                select(RadReply).where(RadReply.username == username).order_by(RadReply.id)
            ).all()
            groups = s.scalars(
                select(RadUserGroup.groupname)
                .where(RadUserGroup.username == username)
                .order_by(RadUserGroup.priority, RadUserGroup.id)
            ).all()
        if not checks and not replies and not groups:
            return None
        password = next((c.value for c in checks if c.attribute == PASSWORD_ATTR), None)
        ip = next((r.value for r in replies if r.attribute == IP_ATTR), None)
        mask = next((r.value for r in replies if r.attribute == MASK_ATTR), None)
        return RadiusSubscriber(
            username=username,
            password=password,
            ip_address=ip,
            netmask=mask,
            groups=tuple(groups),
            extra_reply=tuple(
                ReplyAttribute(r.attribute, r.op, r.value)
                for r in replies
                if r.attribute not in _MANAGED_REPLY
            ),
        )

    def read_all(self) -> dict[str, RadiusSubscriber]:
        """Every subscriber the tables name, by username: one SELECT per table (radcheck,
        radreply, radusergroup), for the fleet drift check."""
        with self._tx("read_all", lock=False) as s:
            check_q = select(RadCheck.username, RadCheck.attribute, RadCheck.value)
            reply_q = select(RadReply.username, RadReply.attribute, RadReply.op, RadReply.value)
            group_q = select(RadUserGroup.username, RadUserGroup.groupname)
            checks = s.execute(check_q.order_by(RadCheck.id)).all()
            replies = s.execute(reply_q.order_by(RadReply.id)).all()
            groups = s.execute(group_q.order_by(RadUserGroup.priority, RadUserGroup.id)).all()
        users: dict[str, _UserRows] = {}
        for name, attribute, value in checks:
            u = users.setdefault(name, _UserRows())
            if attribute == PASSWORD_ATTR and u.password is None:
                u.password = value
        for name, attribute, op, value in replies:
            u = users.setdefault(name, _UserRows())
            if attribute == IP_ATTR:
                u.ip = u.ip or value
            elif attribute == MASK_ATTR:
                u.mask = u.mask or value
            else:
                u.extra.append(ReplyAttribute(attribute, op, value))
        for name, group in groups:
            users.setdefault(name, _UserRows()).groups.append(group)
        return {name: u.subscriber(name) for name, u in users.items()}

    # -- internals --------------------------------------------------------------------
    @contextmanager
    def _tx(self, key: str, *, lock: bool = True) -> Iterator[Session]:
        try:
            with self._sessions.begin() as s:
                if lock and s.get_bind().dialect.name == "postgresql":
                    # Serialize writers of one username (the schema has no unique keys).
                    s.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"radius:{key}"}
                    )
                yield s
        except (OperationalError, DBAPIError) as exc:
            # Never str(exc): SQLAlchemy appends the bound parameters (the password).
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
            cls = (
                TransientDeviceError if isinstance(exc, OperationalError) else PermanentDeviceError
            )
            raise cls(self.name, f"database error: {reason}") from None
        except SQLAlchemyError as exc:
            raise PermanentDeviceError(self.name, f"database error: {type(exc).__name__}") from None

    def _all_rows(self, s: Session, username: str) -> list[Row]:
        """Every row naming the user, managed or added by hand (what remove() deletes)."""
        rows: list[Row] = [
            ("radcheck", c.attribute, c.op, c.value)
            for c in s.scalars(select(RadCheck).where(RadCheck.username == username))
        ]
        rows += [
            ("radreply", r.attribute, r.op, r.value)
            for r in s.scalars(select(RadReply).where(RadReply.username == username))
        ]
        rows += [
            ("radusergroup", "group", str(g.priority), g.groupname)
            for g in s.scalars(select(RadUserGroup).where(RadUserGroup.username == username))
        ]
        return rows

    def _managed_rows(self, s: Session, username: str) -> list[Row]:
        rows: list[Row] = [
            ("radcheck", c.attribute, c.op, c.value)
            for c in s.scalars(
                select(RadCheck).where(
                    RadCheck.username == username, RadCheck.attribute == PASSWORD_ATTR
                )
            )
        ]
        rows += [
            ("radreply", r.attribute, r.op, r.value)
            for r in s.scalars(
                select(RadReply).where(
                    RadReply.username == username, RadReply.attribute.in_(_MANAGED_REPLY)
                )
            )
        ]
        rows += [
            ("radusergroup", "group", str(g.priority), g.groupname)
            for g in s.scalars(select(RadUserGroup).where(RadUserGroup.username == username))
        ]
        return rows

    def _delete_managed(self, s: Session, username: str) -> None:
        s.execute(
            delete(RadCheck).where(
                RadCheck.username == username, RadCheck.attribute == PASSWORD_ATTR
            )
        )
        s.execute(
            delete(RadReply).where(
                RadReply.username == username, RadReply.attribute.in_(_MANAGED_REPLY)
            )
        )
        s.execute(delete(RadUserGroup).where(RadUserGroup.username == username))

    def _record(self, command: str, result: Result, started: float) -> None:
        duration = (time.monotonic() - started) * 1000
        logger.info(
            "radius sql %s",
            command.split(" ", 1)[0],
            extra={"device": self.name, "command": command, "changed": result.changed},
        )
        self._audit(CommandRecord(self.name, command, result.diff, True, duration))


@dataclass
class _UserRows:
    """One username's rows as read_all() collects them, table by table."""

    password: str | None = None
    ip: str | None = None
    mask: str | None = None
    groups: list[str] = field(default_factory=list)
    extra: list[ReplyAttribute] = field(default_factory=list)

    def subscriber(self, username: str) -> RadiusSubscriber:
        return RadiusSubscriber(username=username, password=self.password, ip_address=self.ip,
                                netmask=self.mask, groups=tuple(self.groups),
                                extra_reply=tuple(self.extra))  # fmt: skip


def _planned(lines: tuple[str, ...], detail: dict[str, object]) -> Result:
    """A change of rows: its lines are its diff (secrets already shown as ***)."""
    return Result(changed=True, diff="".join(f"{line}\n" for line in lines), detail=detail,
                  lines=lines)  # fmt: skip
