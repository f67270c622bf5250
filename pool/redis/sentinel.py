"""Following the master of a Sentinel service, so that no process keeps writing to a demoted master.

During a failover the old master may go on accepting writes for seconds after a replica was promoted (until
Sentinel reaches it and makes it a replica of the new one, whose full resync then discards what it took meanwhile).
redis-py's Sentinel pool asks for the master only when it opens a connection and drops a connection only on a
READONLY reply, so a worker's long-lived connections (its blocked read, its fast path, the pool its jobs use)
would keep writing there: starts, results and enqueues that vanish with the resync, and jobs run twice.

Here every connection of a client's pool asks ``SentinelMaster`` for the address when it connects, and
``SentinelMaster.watch`` (one task per client) keeps that address current: it listens to the Sentinels'
``+switch-master`` messages and asks them again every ``sentinel_check_interval`` and whenever a reply hints at
a failover (READONLY, NOREPLICAS, MASTERDOWN). When the address changes, the client drops every connection it
has, idle and in use alike (see ``PoolRedis``), so the next command goes to the new master.

Which Sentinel to believe: each is asked for its configuration epoch and the address it advertises (a Sentinel
that leads a failover advertises the promoted replica, with the new epoch, as soon as the replica acknowledged
its promotion). The highest epoch wins: a Sentinel cut off from the others, still naming the old master, has an
older epoch and is outvoted however many there are like it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ConnectionError,
    MasterDownError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)
from redis.sentinel import MasterNotFoundError

from .sentinel_config import sentinel_addresses, sentinel_kwargs
from .settings import RedisSettings

logger = logging.getLogger("pool.sentinel")

Address = tuple[str, int]
SwitchCallback = Callable[[Address, Address], Awaitable[None]]

SWITCH_CHANNEL = "+switch-master"
# Replies from a node that is not (or no longer, or not safely) the master: a cue to ask the Sentinels again
FAILOVER_REPLIES = ("READONLY", "NOREPLICAS", "MASTERDOWN")


class SentinelMaster:
    """Where the master of ``service`` is, as the Sentinels say, shared by every connection of one client pool."""

    def __init__(self, sentinels: list[Redis], service: str, check_interval: float) -> None:
        self.sentinels = sentinels  # one client per Sentinel (decode_responses=True)
        self.service = service
        self.check_interval = check_interval
        self.address: Address | None = None
        self._epoch = -1
        self._cue = asyncio.Event()
        self._on_switch: list[SwitchCallback] = []
        self._resolving: asyncio.Lock | None = None

    def on_switch(self, callback: SwitchCallback) -> None:
        """Call ``callback(old, new)`` whenever the master moves (the client drops its connections there)."""
        self._on_switch.append(callback)

    def suspect(self) -> None:
        """A reply hinted at a failover: ask the Sentinels now rather than at the next check."""
        self._cue.set()

    async def current(self) -> Address:
        """The master's address for a new connection: asked of the Sentinels the first time, and again at once
        when a failover is suspected, so a connection opened after a READONLY reply goes to the new master."""
        if self.address is None or self._cue.is_set():
            await self.refresh()
        assert self.address is not None
        return self.address

    async def refresh(self) -> bool:
        """Ask the Sentinels; switch (and tell the callbacks) when the master moved. True when it moved."""
        if self._resolving is None:
            self._resolving = asyncio.Lock()
        async with self._resolving:
            self._cue.clear()
            epoch, address = await self._ask_sentinels()
            old = self.address
            if address == old:
                self._epoch = max(self._epoch, epoch)
                return False
            if old is not None and epoch < self._epoch:
                return False  # a Sentinel that has not heard of the latest failover yet
            self.address, self._epoch = address, epoch
        if old is None:
            return False
        logger.warning(
            "sentinel: master %r moved from %s:%d to %s:%d (failover): dropping every connection to the old one",
            self.service,
            *old,
            *address,
        )
        for callback in self._on_switch:
            try:
                await callback(old, address)
            except Exception:  # a failed disconnect must not stop the others
                logger.exception("sentinel: dropping connections to %s:%d failed", *old)
        return True

    async def _ask_sentinels(self) -> tuple[int, Address]:
        """(configuration epoch, advertised master address) of the Sentinel with the highest epoch."""
        answers = await asyncio.gather(*(self._ask(sentinel) for sentinel in self.sentinels), return_exceptions=True)
        best: tuple[int, Address] | None = None
        for answer in answers:
            if isinstance(answer, tuple) and (best is None or answer[0] > best[0]):
                best = answer
        if best is None:
            errors = "; ".join(dict.fromkeys(str(answer) for answer in answers if isinstance(answer, BaseException)))
            raise MasterNotFoundError(
                f"no Sentinel could name the master of {self.service!r}" + (f" ({errors})" if errors else "")
            )
        return best

    async def _ask(self, sentinel: Redis) -> tuple[int, Address] | None:
        async with sentinel.pipeline(transaction=False) as pipe:
            pipe.execute_command("SENTINEL", "MASTER", self.service)
            pipe.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            state, address = await pipe.execute()
        if not address:
            return None
        fields = dict(zip(state[::2], state[1::2], strict=False)) if isinstance(state, list) else dict(state)
        if "s_down" in fields.get("flags", "") or "o_down" in fields.get("flags", ""):
            # this Sentinel sees the master down and has not promoted anyone yet: no address to go to
            return None
        return int(fields.get("config-epoch", 0)), (str(address[0]), int(address[1]))

    async def watch(self) -> None:
        """Keep ``address`` current until cancelled: on each +switch-master message, each suspicion, and every
        ``check_interval``. Errors (Sentinels unreachable) are logged once per outage, not raised."""
        listener = asyncio.create_task(self._listen(), name="pool-sentinel-listen")
        failing = False
        try:
            while True:
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    async with asyncio.timeout(self.check_interval):
                        await self._cue.wait()
                try:
                    await self.refresh()
                    if failing:
                        logger.info("sentinel: the Sentinels of %r answer again", self.service)
                    failing = False
                except (RedisError, OSError) as exc:
                    if not failing:
                        logger.warning("sentinel: cannot ask where the master of %r is (%s)", self.service, exc)
                    failing = True
        finally:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener

    async def _listen(self) -> None:
        """Subscribe to +switch-master on one Sentinel after another (the next when one fails); each message
        about our service is a cue to ask them all (the message alone is one Sentinel's word)."""
        turn = 0
        while True:
            sentinel = self.sentinels[turn % len(self.sentinels)]
            turn += 1
            pubsub = sentinel.pubsub()
            try:
                await pubsub.subscribe(SWITCH_CHANNEL)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message and str(message.get("data", "")).split(" ", 1)[0] == self.service:
                        self.suspect()
            except (RedisError, OSError):
                await asyncio.sleep(self.check_interval)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def aclose(self) -> None:
        for sentinel in self.sentinels:
            with contextlib.suppress(Exception):
                await sentinel.aclose()


def master_of(settings: RedisSettings) -> SentinelMaster:
    """The ``SentinelMaster`` of ``settings``: a client per Sentinel, with the Sentinels' own credentials and TLS
    (pool/redis/sentinel_config.py) and short timeouts (a dead Sentinel must not hold up the others)."""
    sentinels = [
        Redis(
            host=host,
            port=int(port),
            socket_connect_timeout=settings.conn_timeout,
            socket_timeout=max(settings.conn_timeout, 1.0),
            retry=Retry(NoBackoff(), 0),  # the watch asks again anyway; redis-py's retries took seconds per ask
            decode_responses=True,
            **sentinel_kwargs(settings),
        )
        for host, port in sentinel_addresses(settings)
    ]
    return SentinelMaster(sentinels, settings.sentinel_master, settings.sentinel_check_interval)


class _FollowsMaster:
    """A connection that connects to ``SentinelMaster``'s current address, and reports replies that hint at a
    failover. A READONLY reply (the node is a replica now) closes the connection and is raised as a
    ConnectionError, as redis-py's own Sentinel connections do: the command did not run, and the retry that
    follows reconnects, to the new master."""

    host: str
    port: int

    def __init__(self, *, master: SentinelMaster, **kwargs: Any) -> None:
        self.master = master
        super().__init__(**kwargs)

    async def _connect(self) -> None:
        self.host, self.port = await self.master.current()
        await super()._connect()  # type: ignore[misc]

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except ResponseError as exc:
            if not hints_failover(exc):
                raise
            self.master.suspect()
            if isinstance(exc, ReadOnlyError) or "READONLY" in str(exc):  # (in a script: wrapped in its error)
                await self.disconnect()  # type: ignore[attr-defined]
                raise ConnectionError(f"{self.host}:{self.port} is no longer the master ({exc})") from exc
            raise


def hints_failover(exc: BaseException) -> bool:
    """A reply from a node that is not (or no longer, or not safely) the master. redis-py strips the code of
    the replies it maps to classes of their own, and a script's error carries the reply inside its text."""
    if isinstance(exc, (ReadOnlyError, MasterDownError)):
        return True
    return isinstance(exc, ResponseError) and any(code in str(exc) for code in FAILOVER_REPLIES)


class MasterConnection(_FollowsMaster, Connection):
    pass


class MasterSSLConnection(_FollowsMaster, SSLConnection):
    pass
