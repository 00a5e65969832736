"""Free loopback ports for servers a process starts and binds a moment later.

Normally the kernel picks one (a bind to port 0). A port picked that way is free only
when picked: until its server binds it, another process's bind to port 0 may get it
too, or an outgoing connection may take it as its local port (both come from the
kernel's ephemeral range). Under pytest-xdist several test processes start servers at
the same moment, which makes that likely enough to fail a run now and then.

So a test worker (``PYTEST_XDIST_WORKER=gwN``, inherited by every process its tests
start, ``fiberflow up`` included) takes its ports in turn from a block of its own below
the ephemeral range. One counter per worker, kept in a locked file that all of the
worker's processes share, means none of its picks repeats before the block wraps, and
no other worker ever picks from that block.
"""

from __future__ import annotations

import os
import socket
import tempfile
import zlib
from pathlib import Path

#: Worker blocks: 10 blocks of 2,000 ports from 10000, below Linux's default
#: ephemeral range (32768-60999). Worker gwN uses block N mod 10.
BLOCK_BASE = 10_000
BLOCK_SIZE = 2_000
BLOCKS = 10


def free_port(host: str = "127.0.0.1", kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on ``host`` that nothing is bound to now (TCP, or UDP with ``SOCK_DGRAM``)."""
    index = _worker_block()
    if index is not None:
        port = _from_worker_block(host, kind, index)
        if port is not None:
            return port
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _worker_block() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return int(worker[2:]) % BLOCKS
    return None


def worker_counter() -> Path | None:
    """This test worker's counter file (None outside pytest-xdist); the test session
    removes it when it ends."""
    index = _worker_block()
    if index is None:
        return None
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    return Path(tempfile.gettempdir()) / f"fiberflow-ports-{run}-{index}"


def _bindable(host: str, port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _from_worker_block(host: str, kind: socket.SocketKind, index: int) -> int | None:
    # fcntl is POSIX-only; only test workers get here.
    import fcntl

    counter = worker_counter()
    assert counter is not None
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    # A run starts at an offset of its own: two runs on one machine at once (each with
    # its gw0) do not walk the same ports in step.
    start = zlib.crc32(run.encode()) % BLOCK_SIZE
    fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 32).decode().strip()
        offset = int(raw) if raw.isdigit() else start
        found: int | None = None
        for _ in range(BLOCK_SIZE):
            port = BLOCK_BASE + index * BLOCK_SIZE + offset
            offset = (offset + 1) % BLOCK_SIZE
            if _bindable(host, port, kind):
                found = port
                break
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(offset).encode())
        return found
    finally:
        os.close(fd)  # also releases the lock
