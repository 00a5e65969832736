"""A subscriber's managed rows as data, and a change of them as lines (pure).

A row is ``(table, attribute, op, value)``; a radusergroup row is ``("radusergroup",
"group", <priority>, <group>)``. A change renders as the rows it removes (``- ``) then
the rows it writes (``+ ``), e.g. ``+ radcheck alice Cleartext-Password := ***``:
secrets never appear, only ``***``. RadiusStore writes exactly the change these lines
name (its Result.lines and audit), and a dry run shows them unwritten.
"""

from __future__ import annotations

from collections.abc import Iterable

PASSWORD_ATTR = "Cleartext-Password"
IP_ATTR = "Framed-IP-Address"
MASK_ATTR = "Framed-IP-Netmask"
SECRET = "***"
TABLES = ("radcheck", "radreply", "radusergroup")

# (table, attribute, op, value) — a comparable picture of one row of a user.
Row = tuple[str, str, str, str]


def subscriber_rows(password: str, ip: str, group: str, netmask: str | None) -> list[Row]:
    """The rows ``activate`` owns for one subscriber (values already validated)."""
    rows: list[Row] = [("radcheck", PASSWORD_ATTR, ":=", password), ("radreply", IP_ATTR, ":=", ip)]
    if netmask is not None:
        rows.append(("radreply", MASK_ATTR, ":=", netmask))
    rows.append(("radusergroup", "group", "1", group))
    return rows


def show(username: str, row: Row) -> str:
    table, attribute, op, value = row
    if table == "radusergroup":
        return f"{table} {username} {value}"
    if attribute.endswith("Password"):  # Cleartext-Password, Crypt-Password, ...
        value = SECRET
    return f"{table} {username} {attribute} {op} {value}"


def _order(row: Row) -> tuple[int, str, str, str]:
    table, attribute, op, value = row
    return (TABLES.index(table) if table in TABLES else len(TABLES), attribute, op, value)


def row_lines(username: str, current: Iterable[Row], desired: Iterable[Row]) -> tuple[str, ...]:
    """What turns ``current`` into ``desired``: removed rows, then written rows."""
    have, want = sorted(current, key=_order), sorted(desired, key=_order)
    gone = [r for r in have if r not in want]
    new = [r for r in want if r not in have]
    return tuple([f"- {show(username, r)}" for r in gone] + [f"+ {show(username, r)}" for r in new])
