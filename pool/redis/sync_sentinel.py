"""The sync client's way to the master behind Sentinel: the supervisor's parent loop (pool/storage/sync.py).

redis-py's ``Sentinel.master_for`` asks the Sentinels where the master is only when it opens a connection. A
connection that stays open keeps writing to the old master after a promotion, until the Sentinels get round to
demoting it (about ten seconds after a manual failover, measured) and every write of that window is lost. So
this pool asks again, at most every ``sentinel_check_interval`` seconds, when it hands out a connection; a new
answer closes the idle connections to the old master, and the connection handed out opens to the new one.

A check that fails (no Sentinel answers) keeps the master last known: the Sentinels being away is no reason to stop
using a master that works. Each check is bounded by the Sentinels' own timeouts (``sentinel_kwargs``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from .sentinel_config import sentinel_addresses, sentinel_kwargs
from .settings import RedisSettings


class CheckedMasterPool(SentinelConnectionPool):
    """A master pool that re-asks the Sentinels for the master every ``check_interval`` seconds."""

    def __init__(self, service_name: str, sentinel_manager: Sentinel, *, check_interval: float, **kwargs: Any):
        super().__init__(service_name, sentinel_manager, **kwargs)
        self.check_interval = check_interval
        self.checked_at = time.monotonic()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        # before the first connection the master is unknown: opening it asks the Sentinels anyway
        if self.master_address is not None and now - self.checked_at >= self.check_interval:
            self.checked_at = now
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):  # MasterNotFoundError among them
                self.get_master_address()  # a new address disconnects the idle connections to the old one
        return super().get_connection(*args, **kwargs)


def master_client(settings: RedisSettings, sentinel_timeouts: dict[str, Any], **connection_kwargs: Any) -> redis.Redis:
    """A sync client of the settings' master, found through its Sentinels: ``sentinel_timeouts`` are the
    Sentinels' connections' timeouts and retry, ``connection_kwargs`` the master's (db, credentials, timeouts)."""
    sentinels = Sentinel(
        sentinel_addresses(settings), sentinel_kwargs={**sentinel_kwargs(settings), **sentinel_timeouts}
    )
    client: redis.Redis = sentinels.master_for(
        settings.sentinel_master,
        connection_pool_class=CheckedMasterPool,
        check_interval=settings.sentinel_check_interval,
        **connection_kwargs,
    )
    return client


def close(client: redis.Redis) -> None:
    """Close the client's connections, and those to its Sentinels when it has some."""
    client.close()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in manager.sentinels if manager is not None else ():
        sentinel.close()
