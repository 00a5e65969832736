"""Core driver interfaces, results and errors. Implementations live beside this module.

Like nornir: every change returns ``Result(changed, diff, failed)``; reads return typed
values. Drivers never import Prefect, HTTP or event code. A caller that wants an audit
trail passes ``audit=`` — a callable that receives one CommandRecord per device command
(output with secrets already redacted).

Dry run: every write method takes ``dry_run=True`` too. It makes the same reads and
renders the same lines, and returns them in ``Result.lines`` without sending them:
``Result.lines`` of a real call are exactly the lines it sent (CommandRecord.config).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Result:
    changed: bool
    diff: str = ""
    failed: bool = False
    detail: dict[str, object] = field(default_factory=dict)
    #: The change as data: the configuration lines sent (or, with dry_run, that would
    #: be), in order; RADIUS rows as ``+ radcheck <user> <attribute> <op> <value>``.
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandRecord:
    device: str
    command: str
    output: str
    ok: bool
    duration_ms: float
    #: True for a configuration line a write sends (its Result.lines); False for reads,
    #: mode changes (enable, config, return, configure terminal, end) and the login.
    config: bool = False


AuditSink = Callable[[CommandRecord], None]


def no_audit(_record: CommandRecord) -> None:
    return None


class DeviceError(Exception):
    """A device refused or failed an operation."""

    #: True when repeating the same call may succeed (timeouts, dropped sessions).
    transient: bool = False

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class TransientDeviceError(DeviceError):
    """Timeout, refused or dropped connection: worth a retry."""

    transient = True


class DeviceAuthError(DeviceError):
    """Credentials refused: retrying will not help."""


class PermanentDeviceError(DeviceError):
    """The device answered with an error for this input: retrying will not help."""


class InvalidInput(ValueError):
    """A value fails its strict pattern. Raised before any connection opens."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        shown = repr(value)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        super().__init__(f"{field}: invalid value {shown} ({rule})")
        self.field = field
