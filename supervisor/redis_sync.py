"""The parent's synchronous Redis client: short timeouts and no hidden retries, so a dead Redis costs the
parent loop at most a second or two, never a hang."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pool.connections import RedisSettings, ssl_options


def connect(settings: RedisSettings) -> redis.Redis:
    common: dict[str, Any] = {
        "db": settings.database,
        "username": settings.username,
        "password": settings.password,
        "socket_connect_timeout": 1,
        "socket_timeout": 2,
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.unix_socket_path:
        return redis.Redis(unix_socket_path=settings.unix_socket_path, **common)
    host = settings.host if isinstance(settings.host, str) else settings.host[0][0]
    return redis.Redis(host=host, port=settings.port, ssl=settings.ssl, **ssl_options(settings), **common)
