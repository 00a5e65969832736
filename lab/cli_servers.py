"""Entry points that start lab SSH devices on loopback ports.

Inside an asyncio loop::

    olt = await start_olt("olt-1")           # olt.port, olt.state, olt.faults, olt.close()
    bng = await start_bng("bng-1")

From synchronous code (tests, a CLI), run them in a background loop thread::

    with LabThread() as lab:
        olt = lab.start_olt("olt-1")
        ...
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from fiberflow.lab.devices import LabBng, LabOlt
from fiberflow.lab.faults import Faults
from fiberflow.lab.lab_inventory import BNG_MAX_SESSIONS, OLT_MAX_SESSIONS

T = TypeVar("T")
LabDevice = LabOlt | LabBng


async def start_olt(
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    online_delay: float = 0.3,
    faults: Faults | None = None,
    boards: dict[tuple[int, int], int] | None = None,
    username: str = "lab",
    password: str = "lab",
    max_sessions: int | None = OLT_MAX_SESSIONS,
) -> LabOlt:
    """A Huawei-style OLT (GPON boards 0/1 and 0/2, 16 ports each, unless ``boards``)
    taking ``max_sessions`` CLI sessions at once (None: no limit)."""
    olt = LabOlt(
        name,
        online_delay=online_delay,
        faults=faults,
        boards=boards,
        username=username,
        password=password,
        max_sessions=max_sessions,
    )
    await olt.start(host, port)
    return olt


async def start_bng(
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    uplink: str = "GigabitEthernet0/0/1",
    faults: Faults | None = None,
    username: str = "lab",
    password: str = "lab",
    max_sessions: int | None = BNG_MAX_SESSIONS,
) -> LabBng:
    """A Cisco IOS-XE-style BNG whose subscriber sub-interfaces hang off ``uplink``,
    taking ``max_sessions`` CLI sessions at once (None: no limit)."""
    bng = LabBng(name, uplink=uplink, faults=faults, username=username, password=password,
                 max_sessions=max_sessions)  # fmt: skip
    await bng.start(host, port)
    return bng


class LabThread:
    """An asyncio loop in a daemon thread hosting lab devices for synchronous callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="lab", daemon=True)
        self._thread.start()
        self.devices: list[LabDevice] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_olt(self, name: str, **kwargs: Any) -> LabOlt:
        olt = self.run(start_olt(name, **kwargs))
        self.devices.append(olt)
        return olt

    def start_bng(self, name: str, **kwargs: Any) -> LabBng:
        bng = self.run(start_bng(name, **kwargs))
        self.devices.append(bng)
        return bng

    def stop(self) -> None:
        async def _close_all() -> None:
            for dev in self.devices:
                dev.close()
            for dev in self.devices:
                await dev.wait_closed()

        if self.loop.is_running():
            self.run(_close_all())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.devices.clear()

    def __enter__(self) -> LabThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
