"""The flows' transaction: completed steps are compensated once, when the run fails.

Prefect 3.9 rolls the enclosing transaction back as soon as one *attempt* of a task
fails, before it decides to retry: the attempt's own transaction exits with the error
and calls ``parent.rollback()``. A transient error that a retry then survives undid
every completed step of a run that went on to complete (an active service with its IP
and VLAN released), and since a transaction rolls back only once, a later failure left
the steps done after that attempt in place (BNG config and RADIUS rows behind a failed
service). Here a rollback asked for by a task is ignored; the flow's ``with`` block
rolls back when it exits with the error that failed the run: every completed step, in
reverse order, once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.exceptions import MissingContextError
from prefect.logging.loggers import LoggingAdapter, get_logger, get_run_logger
from prefect.transactions import Transaction, get_transaction
from pydantic import PrivateAttr


class FlowTransaction(Transaction):
    _closing: bool = PrivateAttr(default=False)

    def rollback(self) -> bool:
        if not self._closing:  # one task attempt failed; a retry may still succeed
            return False
        return super().rollback()

    def __exit__(self, *exc_info: Any) -> None:
        self._closing = True
        try:
            super().__exit__(*exc_info)
        finally:
            self._closing = False


def remember(**values: object) -> None:
    """Keep ``values`` in the enclosing transaction for this step's ``on_rollback`` hook;
    outside a flow's transaction there is nothing to compensate, so nothing is kept."""
    txn = get_transaction()
    if txn is not None:
        for key, value in values.items():
            txn.set(key, value)


@contextmanager
def transaction() -> Iterator[Transaction]:
    """``prefect.transactions.transaction()`` for a flow's compensated steps."""
    logger: logging.Logger | LoggingAdapter
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = get_logger("transactions")
    with FlowTransaction(logger=logger) as txn:
        yield txn
