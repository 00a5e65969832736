"""Client for a lab device's admin channel, usable from any process.

The admin channel is SSH on the device's own port with the reserved user ``admin``
(password: the device's lab password): the exec command is one JSON object
``{"op": ..., **args}`` and the answer one JSON line ``{"ok": true, "result": ...}``.
A request longer than an exec line may be (``INLINE_LIMIT``) goes on stdin after the
command ``-``.
"""

from __future__ import annotations

import json
from typing import Any

import paramiko

#: Longer requests go on stdin: SSH servers cap an exec request's packet (asyncssh
#: refuses one of ~256 kB and closes the channel).
INLINE_LIMIT = 32_000


class LabAdminError(RuntimeError):
    """The lab refused an admin request."""


def admin_call(
    port: int,
    op: str,
    host: str = "127.0.0.1",
    password: str = "lab",
    timeout: float = 10.0,
    **args: Any,
) -> Any:
    """Run one admin operation, e.g. ``admin_call(port, "faults", latency=0.5)``;
    ``timeout`` bounds each wait for the device (bulk ops on a big state take longer)."""
    request = json.dumps({"op": op, **args})
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
        inline = len(request) <= INLINE_LIMIT
        stdin, stdout, _ = client.exec_command(request if inline else "-", timeout=timeout)
        if not inline:
            stdin.write(request)
            stdin.channel.shutdown_write()
        answer = json.loads(stdout.read().decode() or "{}")
    finally:
        client.close()
    if not answer.get("ok"):
        raise LabAdminError(str(answer.get("error", "no answer")))
    return answer["result"]
