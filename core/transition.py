"""A service's status transition, committed or refused: one code path for every caller.

The API (one service, 409 on a refusal) and a bulk run's parent (one item ``skipped``
with the reason) both move a service into an operation's running status through
:func:`apply`, so a bulk run refuses exactly what a single request refuses.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fiberflow.core.db.models import InvalidTransition, Operation, ServiceInstance

CHANGED_MEANWHILE = "the service was changed by another request; retry"


class Refused(Exception):
    """The transition is not allowed (its message says why); nothing was committed."""


def apply(session: Session, change: Callable[[], None]) -> None:
    """Apply ``change`` to a service row and commit, or raise :class:`Refused` (an
    invalid transition, or a row another request changed meanwhile)."""
    try:
        change()
        session.commit()
    except InvalidTransition as exc:
        session.rollback()
        raise Refused(str(exc)) from None
    except StaleDataError:
        session.rollback()
        raise Refused(CHANGED_MEANWHILE) from None


def begin(session: Session, service: ServiceInstance, operation: Operation) -> None:
    """Move the service into the operation's running status, or :class:`Refused`."""
    apply(session, lambda: service.begin(operation))
