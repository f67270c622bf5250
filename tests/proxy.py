"""A TCP proxy in front of a test's Redis that loses one reply: the connection drops after Redis ran a command.

redis-py retries a command whose connection dropped (``create_pool`` configures that retry), even when Redis had
already run it: a lost reply (Redis restarting, a network blip) turns one call into two runs. Every script of
pool must leave the same state after such a replay as after one run; these helpers let a test make it happen::

    async with client_through_proxy(redis_url) as (client, proxy):
        proxy.drop_reply_of(script_source)       # the next EVALSHA of that script runs, its reply is lost
        await ...                                # redis-py reconnects and sends the call again
        assert proxy.dropped == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

from pool import PoolRedis, RedisSettings, create_pool

__all__ = ["DropOneReplyProxy", "client_through_proxy", "port_of"]

REDIS_RAN_IT_S = 0.2  # how long the proxy lets Redis run the forwarded command before it cuts the connection


class DropOneReplyProxy:
    """TCP proxy to Redis. Armed with a byte pattern, it forwards the next request containing it, lets Redis run
    it, then closes the client's connection without passing the reply on: a connection lost after the command ran
    (Redis restarting, a network blip)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.pattern: bytes | None = None
        self.dropped = 0
        self.server: asyncio.AbstractServer | None = None
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def drop_reply_of(self, script: str) -> None:
        """Arm the proxy for the next EVALSHA of ``script`` (its source): the script must already be loaded, so
        the call that gets cut is the one that runs (not a NOSCRIPT reply)."""
        self.pattern = hashlib.sha1(script.encode()).hexdigest().encode()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        cut = asyncio.Event()

        async def upstream() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
                if self.pattern is not None and self.pattern in data:
                    self.pattern = None
                    cut.set()
                    await asyncio.sleep(REDIS_RAN_IT_S)  # Redis has run it
                    self.dropped += 1
                    writer.close()
                    up_writer.close()
                    return

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if cut.is_set():
                    return
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.gather(upstream(), downstream())
        writer.close()
        up_writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


def port_of(redis_url: str) -> int:
    """The port of a ``redis://host:port[/db]`` URL."""
    return int(redis_url.rsplit(":", 1)[1].split("/")[0])


@contextlib.asynccontextmanager
async def client_through_proxy(redis_url: str) -> AsyncIterator[tuple[PoolRedis, DropOneReplyProxy]]:
    """A ``create_pool`` client (redis-py's retry on) whose connections go through a DropOneReplyProxy."""
    proxy = DropOneReplyProxy(port_of(redis_url))
    proxy_port = await proxy.start()
    client = await create_pool(RedisSettings(host="127.0.0.1", port=proxy_port))
    try:
        yield client, proxy
    finally:
        await client.aclose()
        await proxy.close()
