"""The Redis a ``pool.rq`` queue talks to, and the serializer its jobs are encoded with.

A queue takes rq's ``connection=redis.Redis(...)`` (the caller's client, shared and thread-safe, left open), or
pool's ``RedisSettings`` or a URL (a client of its own, ``Queue.close()`` closes it). Replies must be bytes, as
rq requires too: payloads are binary.
"""

from __future__ import annotations

from typing import Any, cast

import redis
import redis.asyncio

from ..redis.settings import RedisSettings
from ..storage.serializers import Deserializer, Serializer
from ..storage.sync import connect
from ..utils import import_string

# A client built here from settings or a URL: replies within 10 s, and a call whose connection failed (a Redis
# restart) is retried a few times, quickly: every call a queue makes is safe to repeat.
SOCKET_TIMEOUT_S = 10.0
RETRIES = 3


def client_for(connection: Any) -> tuple[redis.Redis, bool]:
    """(a sync redis-py client, whether it was made here and so is closed by the queue)."""
    if connection is None:
        raise TypeError("missing the connection: a redis.Redis, a pool RedisSettings or a redis:// URL")
    if isinstance(connection, str):
        connection = RedisSettings.from_dsn(connection)
    if isinstance(connection, RedisSettings):
        return connect(connection, socket_timeout=SOCKET_TIMEOUT_S, retries=RETRIES), True
    if isinstance(connection, redis.asyncio.Redis | redis.asyncio.RedisCluster):
        raise TypeError("pool.rq takes a synchronous redis.Redis; with asyncio, use pool.create_pool and enqueue_job")
    if not isinstance(connection, redis.Redis | redis.RedisCluster):
        raise TypeError(f"connection must be a redis.Redis, a pool RedisSettings or a redis:// URL, got {connection!r}")
    if connection.get_encoder().decode_responses:
        raise ValueError("the connection decodes replies (decode_responses=True): pool's payloads are binary")
    return cast(redis.Redis, connection), False  # (a cluster client quacks the same: see run_sync)


def codecs(
    serializer: Any, job_serializer: Serializer | None, job_deserializer: Deserializer | None
) -> tuple[Serializer | None, Deserializer | None]:
    """The payload codec: rq's ``serializer`` (an object, or its dotted path, with ``dumps`` and ``loads``, such
    as ``pickle``), or pool's ``job_serializer``/``job_deserializer`` pair; msgpack when neither is given. The
    workers must use the same."""
    if serializer is None:
        return job_serializer, job_deserializer
    if job_serializer is not None or job_deserializer is not None:
        raise TypeError("give serializer= or job_serializer=/job_deserializer=, not both")
    if isinstance(serializer, str):
        serializer = import_string(serializer)
    dumps, loads = getattr(serializer, "dumps", None), getattr(serializer, "loads", None)
    if not callable(dumps) or not callable(loads):
        raise TypeError(f"serializer must have dumps() and loads(), got {serializer!r}")
    return dumps, loads
