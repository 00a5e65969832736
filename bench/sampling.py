"""The background samplers' common part: a daemon thread running ``_loop`` until stopped."""

from __future__ import annotations

import threading


class BackgroundSampler:
    """``start()`` / ``stop()`` around a subclass's ``_loop``, which polls until
    ``self._stop`` is set. A daemon thread: a benchmark that dies leaves nothing behind."""

    thread_name = "sampler"
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout)

    def _loop(self) -> None:
        raise NotImplementedError
