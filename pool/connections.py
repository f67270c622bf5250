"""arq's import path for connecting: re-exports ``pool.redis.settings`` and ``pool.client.connections``."""

from .client.connections import (
    BULK_BATCH,
    BULK_BATCH_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PAYLOAD_BYTES,
    EXPIRES_EXTRA_MS,
    ArqRedis,
    AutoPipelinedRedis,
    JobSpec,
    PoolRedis,
    TLSMismatch,
    create_pool,
    log_redis_info,
)
from .redis.settings import RedisSettings, ssl_options

__all__ = [
    "BULK_BATCH",
    "BULK_BATCH_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "EXPIRES_EXTRA_MS",
    "ArqRedis",
    "AutoPipelinedRedis",
    "JobSpec",
    "PoolRedis",
    "RedisSettings",
    "TLSMismatch",
    "create_pool",
    "log_redis_info",
    "ssl_options",
]
