"""arq's import path for ``func`` and ``Retry``: re-exports ``pool.worker.functions``."""

from .worker.functions import Function, Retry, func

__all__ = ["Function", "Retry", "func"]
