"""``pool.testing``, the documented import path of the inline test pool: re-exports ``pool.worker.testing``."""

from .worker.testing import InlineRedis, create_inline_pool

__all__ = ["InlineRedis", "create_inline_pool"]
