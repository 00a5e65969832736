"""core.ports: the kernel's pick outside tests, a block of its own per xdist worker."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from fiberflow.core import ports


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """A made-up worker gw3 of a run of its own (its counter file in tmp_path)."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    return 3


def test_outside_xdist_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    port = ports.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_worker_takes_ports_in_turn_from_its_block(worker: int) -> None:
    low = ports.BLOCK_BASE + worker * ports.BLOCK_SIZE
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == 50
    assert all(low <= p < low + ports.BLOCK_SIZE for p in picked)
    assert all(p < 32768 for p in picked)  # below the kernel's ephemeral range


def test_a_bound_port_is_passed_over(worker: int) -> None:
    first = ports.free_port()
    nxt = first + 1 if first + 1 < ports.BLOCK_BASE + (worker + 1) * ports.BLOCK_SIZE else None
    if nxt is None:  # the block wrapped; the next pick is its first port
        nxt = ports.BLOCK_BASE + worker * ports.BLOCK_SIZE
    with socket.socket() as held:
        held.bind(("127.0.0.1", nxt))
        assert ports.free_port() != nxt


def test_udp_ports_come_from_the_same_block(worker: int) -> None:
    low = ports.BLOCK_BASE + worker * ports.BLOCK_SIZE
    port = ports.free_port(kind=socket.SOCK_DGRAM)
    assert low <= port < low + ports.BLOCK_SIZE
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
