"""A small asyncio UDP server base for the lab RADIUS server and the lab NAS."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class UdpService(asyncio.DatagramProtocol):
    """Receives datagrams, hands each to ``handle`` (a coroutine) and sends its answer.

    ``drop_requests`` (fault injection) ignores every request, so clients time out.
    """

    kind = "udp"

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.drop_requests = False
        self.host = "127.0.0.1"
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._transport = transport
        self.host, self.port = transport.get_extra_info("sockname")[:2]
        logger.info("lab %s listening", self.kind, extra={"host": self.host, "port": self.port})

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.drop_requests:
            logger.info("lab %s dropped a request (fault injection)", self.kind)
            return
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: Address) -> None:
        try:
            reply = await self.handle(data, addr)
        except Exception:
            # A malformed packet is dropped, as a real server does.
            logger.warning("lab %s could not handle a packet", self.kind, exc_info=True)
            return
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    async def handle(self, data: bytes, addr: Address) -> bytes | None:
        raise NotImplementedError

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
