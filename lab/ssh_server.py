"""asyncssh server shared by the lab devices: login, line reading, faults, admin channel.

A device takes at most ``max_sessions`` CLI sessions at once, like a real one's VTY
lines (lab/lab_inventory.py gives the figures and their sources): one more is refused
(a line of text, then the channel closes; the client's login fails) unless a session
ends within ``VTY_GRACE_SECONDS`` (a client that has just logged out may reconnect
before the server has seen the end of its previous session).

A session reads raw bytes (no asyncssh line editor: netmiko waits for the exact echo of
each command, and an editor's line-wrapping escapes would break that), echoes each line
like a device with a pty does, and hands it to the device's CLI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import asyncssh

from fiberflow.lab.cli_base import Cli, Reply
from fiberflow.lab.faults import FaultSet

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
#: How long a session beyond the limit waits for a VTY line before it is refused.
VTY_GRACE_SECONDS = 2.0
_HOST_KEY: asyncssh.SSHKey | None = None
_KEY_LOCK = threading.Lock()


def host_key() -> asyncssh.SSHKey:
    """One throwaway ed25519 host key per process (lab clients do not pin host keys)."""
    global _HOST_KEY
    with _KEY_LOCK:
        if _HOST_KEY is None:
            _HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")
        return _HOST_KEY


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections = 0
        self.logins = 0
        self.commands = 0
        self.open = 0  # CLI sessions open right now
        self.peak_open = 0  # most CLI sessions open at once
        self.refused = 0  # CLI sessions refused: every VTY line was busy
        self.latency_s = 0.0  # injected latency served (every delayed line, login included)

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def opened(self, delta: int) -> None:
        with self._lock:
            self.open += delta
            self.peak_open = max(self.peak_open, self.open)

    def try_open(self, limit: int | None) -> bool:
        """Count one more open session unless ``limit`` are open already."""
        with self._lock:
            if limit is not None and self.open >= limit:
                return False
            self.open += 1
            self.peak_open = max(self.peak_open, self.open)
            return True

    def waited(self, seconds: float) -> None:
        with self._lock:
            self.latency_s += seconds

    def reset(self) -> None:
        with self._lock:
            self.connections = self.logins = self.commands = self.refused = 0
            self.latency_s = 0.0
            self.peak_open = self.open

    def to_dict(self) -> dict[str, float]:
        with self._lock:
            return {
                "connections": self.connections,
                "logins": self.logins,
                "commands": self.commands,
                "open": self.open,
                "peak_open": self.peak_open,
                "refused": self.refused,
                "latency_s": round(self.latency_s, 3),
            }


class _Server(asyncssh.SSHServer):
    def __init__(self, device: SshDevice) -> None:
        self.device = device

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.device.counters.bump("connections")
        self.conn = conn
        self.device.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.device.connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        dev = self.device
        if username == ADMIN_USER:
            return password == dev.admin_password
        if dev.faults.snapshot().auth_failure:
            log.info("lab auth refused by fault", extra={"device": dev.name})
            return False
        ok = username == dev.username and password == dev.password
        if ok:
            dev.counters.bump("logins")
        return ok


class SshDevice:
    """Base of LabOlt / LabBng: an SSH listener whose sessions run ``make_cli()``."""

    def __init__(
        self,
        name: str,
        make_cli: Callable[[], Cli],
        faults: FaultSet,
        username: str = "lab",
        password: str = "lab",
        admin_password: str = "lab",
        max_sessions: int | None = None,
    ) -> None:
        self.name = name
        #: CLI sessions at once (the device's VTY lines); None: no limit.
        self.max_sessions = max_sessions
        self.make_cli = make_cli
        self.faults = faults
        self.username = username
        self.password = password
        self.admin_password = admin_password
        self.counters = Counters()
        # Bumped by every CLI line and admin request (lab/persist.py polls it to learn
        # that state may have changed); racing bumps may merge, it only has to move.
        self.activity = 0
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.host = "127.0.0.1"
        self.port = 0
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._acceptor = await asyncssh.listen(
            host,
            port,
            server_host_keys=[host_key()],
            server_factory=lambda: _Server(self),
            process_factory=self._session,
            line_editor=False,
            encoding="utf-8",
            keepalive_interval=0,
        )
        self.host = host
        self.port = self._acceptor.get_port()
        log.info("lab device listening", extra={"device": self.name, "port": self.port})

    def close(self) -> None:
        """Stop listening and end every session (safe from any thread)."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is None:
            return

        def _close() -> None:
            acceptor.close()
            for conn in list(self.connections):
                conn.abort()

        loop = self._loop
        if loop is not None and loop.is_running() and not _in_loop(loop):
            loop.call_soon_threadsafe(_close)
        else:
            _close()

    async def wait_closed(self) -> None:
        for _ in range(500):  # bounded: a wedged peer must not hang shutdown
            if not self.connections:
                return
            await asyncio.sleep(0.01)

    # Admin operations: subclasses add theirs via ``admin_ops``.
    def admin(self, op: str, **args: Any) -> dict[str, Any]:
        self.activity += 1
        ops = self.admin_ops()
        if op not in ops:
            raise ValueError(f"unknown admin op {op!r}; known: {sorted(ops)}")
        return ops[op](**args)

    def admin_ops(self) -> dict[str, Callable[..., dict[str, Any]]]:
        return {
            "faults": lambda **kw: self.faults.update(**kw).to_dict(),
            "clear_faults": self._clear_faults,
            "counters": self.counters.to_dict,
            "reset_counters": self._reset_counters,
        }

    def _reset_counters(self) -> dict[str, float]:
        """Counters back to zero (``peak_open`` to the sessions open now), state kept."""
        self.counters.reset()
        return self.counters.to_dict()

    def _clear_faults(self) -> dict[str, Any]:
        self.faults.clear()
        return self.faults.snapshot().to_dict()

    # --- sessions -------------------------------------------------------------------

    async def _session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        try:
            if process.get_extra_info("username") == ADMIN_USER:
                await self._admin_session(process)
            elif await self._vty_line():
                try:
                    await self._cli_session(process)
                finally:
                    self.counters.opened(-1)
            else:
                self.counters.bump("refused")
                log.info("lab refuses a session: all VTY lines busy",
                         extra={"device": self.name})  # fmt: skip
                process.stdout.write(f"lab: all {self.max_sessions} VTY lines are busy\r\n")
                process.exit(1)
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            pass
        finally:
            if not process.is_closing():
                process.exit(0)

    async def _vty_line(self) -> bool:
        """Take a VTY line, waiting up to VTY_GRACE_SECONDS for one to free."""
        deadline = asyncio.get_running_loop().time() + VTY_GRACE_SECONDS
        while not self.counters.try_open(self.max_sessions):
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _admin_session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        """``ssh admin@lab '{"op": "dump"}'``: one JSON request, one JSON answer. The
        command ``-`` reads the request from stdin instead (an exec line is limited to
        a few hundred kB; a bulk ``seed`` is larger)."""
        try:
            raw = process.command or "{}"
            if raw.strip() == "-":
                raw = await process.stdin.read()
            request = json.loads(raw)
            answer: dict[str, Any] = {
                "ok": True,
                "result": self.admin(request.pop("op"), **request),
            }
        except Exception as exc:  # report any bad request to the admin client
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        process.stdout.write(json.dumps(answer) + "\n")

    async def _cli_session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        cli = self.make_cli()
        out = process.stdout
        out.write(_crlf(cli.banner()) + cli.prompt())
        pending = ""
        on_key: Callable[[str], Reply] | None = None  # set while a pager prompt waits
        while True:
            data = await process.stdin.read(4096)
            if not data:
                return
            # netmiko's is_alive() probes with NUL bytes; a device ignores them.
            pending += data.replace("\x00", "")
            while pending:
                if on_key is not None:
                    # A pager acts on one key, unechoed; "\r\n" is one Enter.
                    size = 2 if pending.startswith("\r\n") else 1
                    key, pending = pending[:size], pending[size:]
                    reply = on_key(key[0])
                    on_key = reply.on_key
                    self._write_reply(process, cli, reply)
                    continue
                cut = min(
                    (i for i in (pending.find("\r"), pending.find("\n")) if i >= 0), default=-1
                )
                if cut < 0:
                    break
                line = pending[:cut]
                # Treat "\r\n" as one line end.
                skip = 2 if pending[cut : cut + 2] == "\r\n" else 1
                pending = pending[cut + skip :]
                ran = await self._run_line(process, cli, line)
                if ran is None:
                    return
                on_key = ran.on_key

    async def _run_line(
        self, process: asyncssh.SSHServerProcess[str], cli: Cli, line: str
    ) -> Reply | None:
        """Run one line; its reply, or None when the session ended."""
        out = process.stdout
        command = line.strip()
        log.debug("lab line", extra={"device": self.name, "line": line})
        self.counters.bump("commands")
        self.activity += 1
        out.write(line + "\r\n")  # the echo a pty gives
        delay = self.faults.latency_for(command) if command else 0.0
        if delay:
            self.counters.waited(delay)
            await asyncio.sleep(delay)
        if command and self.faults.drops(command):
            if self.faults.snapshot().drop_after_run:
                cli.handle(line)  # the device acts, but the answer never arrives
            log.info("lab drops connection", extra={"device": self.name, "command": command})
            process.get_extra_info("connection").abort()
            return None
        error = self.faults.error_reply(command) if command else None
        if error is not None:
            out.write(_crlf(error + "\n") + "\r\n" + cli.prompt())
            return Reply()
        reply = cli.handle(line)
        return reply if self._write_reply(process, cli, reply) else None

    def _write_reply(self, process: asyncssh.SSHServerProcess[str], cli: Cli, reply: Reply) -> bool:
        """Write ``reply`` and the prompt it calls for; False once the session is closed."""
        out = process.stdout
        # A question (prompt=False) leaves the cursor on its line, as the device does.
        end = "\n" if reply.prompt or reply.close else ""
        text = _crlf(reply.output + end) if reply.output else ""
        if reply.close:
            out.write(text)
            process.exit(0)
            return False
        out.write(text + (("\r\n" if reply.output else "") + cli.prompt() if reply.prompt else ""))
        return True


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
