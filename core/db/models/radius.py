"""FreeRADIUS's standard rlm_sql tables (raddb/mods-config/sql/main/*/schema.sql).

Same table and column names, so an unmodified FreeRADIUS ``sql`` module reads them.
"""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fiberflow.core.db.models.base import Base


class _AttributeRow:
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attribute: Mapped[str] = mapped_column(String(64), default="")
    op: Mapped[str] = mapped_column(String(2), default="==")
    value: Mapped[str] = mapped_column(String(253), default="")


class RadCheck(_AttributeRow, Base):
    __tablename__ = "radcheck"
    username: Mapped[str] = mapped_column(String(64), default="", index=True)


class RadReply(_AttributeRow, Base):
    __tablename__ = "radreply"
    username: Mapped[str] = mapped_column(String(64), default="", index=True)


class RadGroupCheck(_AttributeRow, Base):
    __tablename__ = "radgroupcheck"
    groupname: Mapped[str] = mapped_column(String(64), default="", index=True)


class RadGroupReply(_AttributeRow, Base):
    __tablename__ = "radgroupreply"
    groupname: Mapped[str] = mapped_column(String(64), default="", index=True)


class RadUserGroup(Base):
    __tablename__ = "radusergroup"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), default="", index=True)
    groupname: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[int] = mapped_column(Integer, default=1)
