"""Client for a lab device's admin channel, usable from any process.

The admin channel is SSH on the device's own port with the reserved user ``admin``
(password: the device's lab password): the exec command is one JSON object
``{"op": ..., **args}`` and the answer one JSON line ``{"ok": true, "result": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

import paramiko


class LabAdminError(RuntimeError):
    """The lab refused an admin request."""


def admin_call(
    port: int, op: str, host: str = "127.0.0.1", password: str = "lab", **args: Any
) -> Any:
    """Run one admin operation, e.g. ``admin_call(port, "faults", latency=0.5)``."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            host,
            port=port,
            username="admin",
            password=password,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        _, stdout, _ = client.exec_command(json.dumps({"op": op, **args}), timeout=10)
        answer = json.loads(stdout.read().decode() or "{}")
    finally:
        client.close()
    if not answer.get("ok"):
        raise LabAdminError(str(answer.get("error", "no answer")))
    return answer["result"]
