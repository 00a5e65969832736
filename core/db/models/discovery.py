"""ONTs seen in OLT autofind on the last discovery pass (zero-touch activation)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fiberflow.core.db.models.base import Base, utcnow


class OntSighting(Base):
    """One unregistered ONT an OLT listed in ``display ont autofind all``.

    A pass replaces every row of each OLT it read; an OLT it could not read keeps the
    rows of its last good read (their ``seen_at`` tells how old they are).
    """

    __tablename__ = "ont_sightings"
    __table_args__ = (UniqueConstraint("olt", "serial", name="uq_ont_sightings_olt_serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    olt: Mapped[str] = mapped_column(String(64))
    pon_port: Mapped[str] = mapped_column(String(16))
    serial: Mapped[str] = mapped_column(String(16))
    # When the pass read the OLT (not the OLT's own autofind clock).
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
