"""Logging set-up: plain text for people, JSON lines (FIBERFLOW_LOG_JSON=1) for collectors."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

# Fields callers pass with ``extra=`` that belong in the structured record.
STRUCTURED = (
    "service", "service_id", "tenant_id", "flow_run_id", "step", "status",
    "duration_ms", "device", "child", "operation",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in STRUCTURED:
            if key in record.__dict__:
                doc[key] = record.__dict__[key]
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per HTTP request from our own health probes is noise, not information.
    logging.getLogger("httpx").setLevel(logging.WARNING)


# The one import root: its logger (the parent of every module's) gets its own handler in
# flow-run processes.
PACKAGES = ("fiberflow",)
_flow_run_configured = False


def configure_flow_run_process(level: str = "INFO", json_lines: bool = False) -> bool:
    """Logging for a flow-run process a worker started (``PREFECT__FLOW_RUN_ID`` set).

    Prefect owns such a process's root logger (level WARNING, its console format), so
    our records (service_id, step, duration_ms, device, ...) would be dropped or lose
    their fields. Our packages' loggers get one handler of ours instead (JSON lines with
    FIBERFLOW_LOG_JSON=1) and stop propagating, so nothing is printed twice. Once per
    process; anywhere else (flows called in-process, tests) it does nothing.
    """
    global _flow_run_configured
    if _flow_run_configured or not os.environ.get("PREFECT__FLOW_RUN_ID"):
        return False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    for name in PACKAGES:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    _flow_run_configured = True
    return True
