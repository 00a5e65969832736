"""netmiko SSH sessions: opened, audited, always closed.

By default each driver operation opens its own session. A driver may also hold one
session across consecutive operations (``SessionHolder``: the driver's ``held()``
scope), so a provisioning logs in once per device instead of once per call.

Maps netmiko/paramiko failures onto devices.base errors: refused credentials ->
DeviceAuthError; timeouts, refused or dropped connections -> TransientDeviceError.
A session that saw a transport error is dead (``CliSession.alive`` False): a held one
is never used again.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

import paramiko
from netmiko import BaseConnection, ConnectHandler
from netmiko.exceptions import (
    ConfigInvalidException,
    NetmikoAuthenticationException,
    NetmikoBaseException,
)

from fiberflow.devices.base import (
    AuditSink,
    CommandRecord,
    DeviceAuthError,
    PermanentDeviceError,
    TransientDeviceError,
)
from fiberflow.devices.inventory import Device

log = logging.getLogger(__name__)

#: Errors that mean "the transport failed", not "the device said no".
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    NetmikoBaseException,
    OSError,
    EOFError,
    socket.timeout,
    paramiko.SSHException,
)


_SLOTS: dict[tuple[str, int, int], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


class _ClosedSessionNoise(logging.Filter):
    """Huawei OLTs close the TCP session as soon as the logout question is answered;
    netmiko's disconnect() then probes the dead channel (is_alive) and logs "Unable to
    send" at ERROR with a traceback. Expected on every huawei_olt logout: drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable to send")


logging.getLogger("netmiko").addFilter(_ClosedSessionNoise())


def _slots(device: Device) -> threading.BoundedSemaphore:
    """Per-device cap on concurrent sessions in this process (inventory max_sessions)."""
    with _SLOTS_LOCK:
        key = (device.host, device.port, device.max_sessions)
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(device.max_sessions)
        return _SLOTS[key]


class CliSession:
    """Send commands over an open netmiko connection, auditing each one."""

    def __init__(
        self,
        conn: BaseConnection,
        device: Device,
        audit: AuditSink,
        failure_of: Callable[[str], str | None],
    ) -> None:
        self.conn = conn
        self.device = device
        self.audit = audit
        self.failure_of = failure_of
        #: False once a transport error was seen: the channel cannot be trusted again.
        self.alive = True
        # Any prompt of this device: "olt-1>", "olt-1#", "olt-1(config-if-gpon-0/1)#".
        self.prompt_re = re.escape(conn.base_prompt) + r"[^\r\n#>]*[#>]"

    def send(self, command: str, *, config: bool = False) -> str:
        """Run one command and return its output (echo and prompt stripped). ``config``:
        a configuration line of a change (audited as such), not a read."""
        start = time.monotonic()
        try:
            output = self.conn.send_command(
                command,
                expect_string=self.prompt_re,
                read_timeout=self.device.timeout,
                strip_prompt=True,
                strip_command=True,
            )
        except TRANSPORT_ERRORS as exc:
            self.alive = False
            self._record(command, f"<{type(exc).__name__}: {exc}>", False, start, config)
            raise TransientDeviceError(self.device.name, f"{command!r}: {exc}") from exc
        assert isinstance(output, str)
        self._record(command, output, self.failure_of(output) is None, start, config)
        return output

    def configure(self, command: str, error_pattern: str) -> str:
        """One configuration line through send_config_set (already in config mode)."""
        start = time.monotonic()
        try:
            output = self.conn.send_config_set(
                [command],
                enter_config_mode=False,
                exit_config_mode=False,
                error_pattern=error_pattern,
                read_timeout=self.device.timeout,
            )
        except ConfigInvalidException as exc:
            self._record(command, str(exc), False, start, True)
            raise PermanentDeviceError(self.device.name, f"{command!r} rejected: {exc}") from exc
        except TRANSPORT_ERRORS as exc:
            self.alive = False
            self._record(command, f"<{type(exc).__name__}: {exc}>", False, start, True)
            raise TransientDeviceError(self.device.name, f"{command!r}: {exc}") from exc
        self._record(command, output, self.failure_of(output) is None, start, True)
        return output

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run a netmiko mode change (enable, config_mode, ...) with error mapping."""
        start = time.monotonic()
        try:
            result = fn()
        except TRANSPORT_ERRORS + (ValueError,) as exc:
            self.alive = False
            self._record(what, f"<{type(exc).__name__}: {exc}>", False, start)
            raise TransientDeviceError(self.device.name, f"{what}: {exc}") from exc
        self._record(what, "", True, start)
        return result

    def _record(
        self, command: str, output: str, ok: bool, start: float, config: bool = False
    ) -> None:
        ms = (time.monotonic() - start) * 1000
        log.debug(
            "device command",
            extra={"device": self.device.name, "command": command, "ok": ok, "ms": round(ms, 1)},
        )
        self.audit(CommandRecord(self.device.name, command, output, ok, ms, config))


@contextmanager
def open_session(
    device: Device,
    device_type: str,
    audit: AuditSink,
    failure_of: Callable[[str], str | None],
) -> Iterator[CliSession]:
    """Connect (mapping errors), yield a CliSession, always disconnect."""
    slots = _slots(device)
    if not slots.acquire(timeout=device.timeout):
        raise TransientDeviceError(device.name, f"all {device.max_sessions} sessions busy")
    try:
        with _connected(device, device_type, audit) as conn:
            yield CliSession(conn, device, audit, failure_of)
    finally:
        slots.release()


class SessionHolder:
    """One CLI session a driver keeps across consecutive operations.

    ``held()`` opens a scope; the first operation in it logs in (taking the device's
    per-process slot once) and every later one reuses that session; the scope's end
    logs out. Outside a scope ``session()`` opens a session per operation, as before.

    Health: a session that saw a transport error (``CliSession.alive`` False) is never
    reused: the next operation in the scope raises TransientDeviceError without
    touching the device (the task's retry opens a new session). A nested ``held()``
    reuses the enclosing session while it is alive and otherwise replaces it with a
    fresh one (logs out the dead one first, so its slot is free): what a compensation
    uses to clean up after the transport failed. After an operation that failed for
    another reason, ``reset`` takes the live session back to the privileged prompt (it
    may have stopped in a configuration mode), so the next operation starts where a
    new session would.

    A holder belongs to one thread: another thread's operations open their own
    sessions, and ``held()`` from another thread while one is held is an error.
    """

    def __init__(
        self,
        device: Device,
        opener: Callable[[], AbstractContextManager[CliSession]],
        reset: Callable[[CliSession], object],
    ) -> None:
        self.device = device
        self._open = opener
        self._reset = reset
        self._depth = 0
        self._owner: int | None = None
        self._current: CliSession | None = None
        self._stack: ExitStack | None = None

    @property
    def holding(self) -> bool:
        """True inside a ``held()`` scope of the calling thread."""
        return self._depth > 0 and self._owner == threading.get_ident()

    @contextmanager
    def held(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._depth and self._owner != me:
            raise RuntimeError(f"{self.device.name}: session held by another thread")
        self._owner = me
        self._depth += 1
        try:
            if self._current is not None and not self._current.alive:
                self._close()  # a nested scope after a transport error: a fresh session
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._close()

    @contextmanager
    def session(self) -> Iterator[CliSession]:
        """The held session (opened on first use), else a session for this call."""
        if not self.holding:
            with self._open() as fresh:
                yield fresh
            return
        if self._current is None:
            stack = ExitStack()
            self._current = stack.enter_context(self._open())
            self._stack = stack
        s = self._current
        if not s.alive:
            raise TransientDeviceError(self.device.name, "held session lost earlier in this scope")
        try:
            yield s
        except BaseException:
            if s.alive:
                try:
                    self._reset(s)
                except Exception as exc:  # the operation's own error is the one to report
                    s.alive = False
                    log.debug("held session reset failed: %s", exc,
                              extra={"device": self.device.name})  # fmt: skip
            raise

    def _close(self) -> None:
        stack, self._stack, self._current = self._stack, None, None
        if stack is not None:
            stack.close()


@contextmanager
def _connected(device: Device, device_type: str, audit: AuditSink) -> Iterator[BaseConnection]:
    start = time.monotonic()
    try:
        conn = ConnectHandler(
            device_type=device_type,
            host=device.host,
            port=device.port,
            username=device.username,
            password=device.secret(),
            # netmiko sends the secret after `enable` unconditionally; the lab (and our
            # devices) have an empty enable secret.
            secret="",
            conn_timeout=min(device.timeout, 10.0),
            auth_timeout=device.timeout,
            banner_timeout=device.timeout,
            timeout=device.timeout,
            use_keys=False,
            allow_agent=False,
            ssh_config_file=None,
        )
    except NetmikoAuthenticationException as exc:
        audit(CommandRecord(device.name, "<login>", "authentication failed", False, 0.0))
        raise DeviceAuthError(device.name, "authentication failed") from exc
    except TRANSPORT_ERRORS + (ValueError,) as exc:
        ms = (time.monotonic() - start) * 1000
        audit(CommandRecord(device.name, "<login>", f"<{type(exc).__name__}>", False, ms))
        raise TransientDeviceError(device.name, f"cannot open session: {exc}") from exc
    try:
        yield conn
    finally:
        try:
            conn.disconnect()
        except Exception:  # closing a dead session must not mask the real error
            log.debug("disconnect failed", extra={"device": device.name}, exc_info=True)
