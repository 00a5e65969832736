"""Learn that the server is shutting down, from the signals that shut it down.

uvicorn (like gunicorn's workers) shuts down gracefully on SIGINT/SIGTERM: it stops
accepting, then waits for every open response to finish before the app's lifespan
ends. An SSE stream never finishes by itself, so the app must hear the signal too,
or shutdown hangs until the server's graceful timeout cancels the streams with an
error. ``on_exit_signal`` puts a handler in front of the server's own while the app
runs: the server's handler still runs on every signal, exactly as before, and the
app's callback runs once in its event loop. Only the standard ``signal`` module and
the servers' documented signal behaviour are used, so the API works the same under
``fiberflow api``, ``uvicorn --factory`` or any other server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

# The signals uvicorn and gunicorn take as "shut down gracefully".
EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], object]


@contextlib.contextmanager
def on_exit_signal(callback: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM also call ``callback`` (once, in the running loop).

    Enter it from the app's lifespan: the server has installed its own handlers by
    then (uvicorn does before the lifespan starts). A signal with no Python handler
    (default or ignored) has no graceful shutdown to wait for and is left alone; off
    the main thread (an app run by a test client's thread) Python cannot take signals
    at all, and nothing is done.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, _Handler] = {}  # by signal number
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired and not loop.is_closed():
            fired = True
            # A signal handler runs between any two bytecodes of the main thread,
            # possibly inside the loop itself: hand the callback to the loop.
            loop.call_soon_threadsafe(callback)
        previous[signum](signum, frame)

    for sig in EXIT_SIGNALS:
        current = signal.getsignal(sig)
        if callable(current):
            previous[sig] = current
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            # Put the server's handler back unless someone replaced ours meanwhile
            # (they may chain to it; ours stays harmless then: the server's still runs).
            if signal.getsignal(number) is handler:
                signal.signal(number, old)
