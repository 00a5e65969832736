"""api/exit_signal.py: the app hears the server's shutdown signals without taking them
from the server (the end-to-end case, a real uvicorn and SIGTERM, is in
tests/api/test_realtime.py)."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

from fiberflow.api.exit_signal import on_exit_signal
from tests.api.sse import WAIT


async def test_exit_signal_calls_back_once_and_the_server_handler_every_time() -> None:
    server: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        server.append(signum)

    before = signal.signal(signal.SIGTERM, server_handler)
    try:
        calls: list[None] = []
        ended = asyncio.Event()

        def callback() -> None:
            calls.append(None)
            ended.set()

        with on_exit_signal(callback):
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)  # e.g. an impatient supervisor
            await asyncio.wait_for(ended.wait(), WAIT)
            await asyncio.sleep(0.05)
        assert calls == [None]  # once, in the loop
        assert server == [signal.SIGTERM, signal.SIGTERM]  # the server's as before
        assert signal.getsignal(signal.SIGTERM) is server_handler  # put back
    finally:
        signal.signal(signal.SIGTERM, before)


async def test_exit_signal_leaves_unhandled_signals_alone() -> None:
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with on_exit_signal(lambda: None):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
