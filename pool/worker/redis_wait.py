"""Waiting for Redis at start-up: the one behaviour of ``pool worker`` and ``pool start``.

Both wait up to ``--wait-for-redis SECONDS`` while Redis is unreachable (or answers that it cannot serve yet:
LOADING, BUSY...), retrying with backoff (0.5 s doubling up to 5 s) and logging each wait, then exit 1 with one
line. Without the flag they wait as long as the settings' ``conn_retries`` x ``conn_retry_delay`` (5 s with
arq's defaults). A refusal that waiting cannot fix (a wrong or missing password, an ACL, a TLS mismatch) ends the
wait at once. One-shot commands (``check``, ``health``, ``queue``, ``failed``) do not wait: one attempt, one line.

Synchronous: the supervisor's parent runs no event loop, and ``pool worker`` waits before it starts one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from ..redis.retries import transient
from ..redis.settings import RedisSettings
from ..redis.tls_probe import permanent_problem

logger = logging.getLogger("pool.worker")

T = TypeVar("T")

FIRST_WAIT_S = 0.5
MAX_WAIT_S = 5.0


# the --wait-for-redis flag of `pool worker` and `pool start`, described once
WAIT_FLAG = "--wait-for-redis"
WAIT_HELP = (
    "at start, wait up to S seconds for an unreachable Redis, then exit 1 (default: the settings' conn_retries x "
    "conn_retry_delay, 5 s with the defaults; 0: one attempt; inf: forever)"
)


def wait_seconds(text: str) -> float:
    """The flag's value: seconds, 0 or more (``inf`` waits forever)."""
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise ValueError(f"must be 0 or more seconds, got {text}")
    return value


class RedisUnavailable(Exception):
    """Redis refused us, or did not come up in time; the message is one line for the user."""


def default_wait_s(settings: RedisSettings) -> float:
    """How long to wait when ``--wait-for-redis`` is not given: the settings' retries times their delay."""
    return max(settings.conn_retries, 0) * max(settings.conn_retry_delay, 0)


def refusal(settings: RedisSettings, exc: BaseException, probe: bool) -> str | None:
    """One line when retrying cannot help (``probe``: also look for a TLS mismatch, which costs a connection);
    None when Redis may yet come up."""
    where = settings.describe()
    if isinstance(exc, redis.AuthenticationError):
        return f"Redis at {where} refused authentication: {explain_auth_error(exc)}"
    if isinstance(exc, redis.ResponseError) and not transient(exc):  # NoPermissionError (an ACL) among others
        return f"Redis at {where} refused (permission): {exc}"
    if probe and isinstance(exc, redis.RedisError | OSError) and (problem := permanent_problem(settings, exc, 1.0)):
        return f"cannot connect to Redis at {where}: {problem}"
    return None


_NO_PASSWORD_GIVEN = ("HELLO must be called", "NOAUTH", "Authentication required")
NEEDS_PASSWORD = "it needs a password (give it in the Redis URL as user:password@ before the host, or in the settings)"


def explain_auth_error(exc: BaseException | str) -> str:
    """Redis's own words for a missing password are about HELLO or AUTH syntax; say what to do instead."""
    text = str(exc)
    return NEEDS_PASSWORD if any(phrase in text for phrase in _NO_PASSWORD_GIVEN) else text


def explain(message: str) -> str:
    """An error line (``... refused authentication: <Redis's words>``) with a missing password explained."""
    head, sep, tail = message.partition("refused authentication: ")
    return head + sep + explain_auth_error(tail) if sep else message


def wait_for_redis(
    check: Callable[[], T],
    settings: RedisSettings,
    seconds: float,
    pause: Callable[[float], bool] | None = None,
) -> T | None:
    """Call ``check`` (a ping, say) until it succeeds and return its result. Between attempts, ``pause(delay)``
    sleeps; it returns False to give up quietly (a stop requested meanwhile): then None. Raises
    RedisUnavailable on a refusal, or when ``seconds`` have passed (0: one attempt)."""
    deadline = time.monotonic() + seconds
    delay = FIRST_WAIT_S
    first = True
    while True:
        try:
            return check()
        except (redis.RedisError, OSError) as exc:
            problem = refusal(settings, exc, probe=first)
            if problem is not None:
                raise RedisUnavailable(problem) from None
            reason: BaseException = exc
        first = False
        left = deadline - time.monotonic()
        if left <= 0:
            raise RedisUnavailable(
                f"cannot connect to Redis at {settings.describe()}: {reason}"
                + (f" (gave up after waiting {seconds:g}s: --wait-for-redis)" if seconds else "")
            ) from None
        wait = min(delay, left)
        logger.warning("waiting for Redis at %s (%s); retrying in %.1fs", settings.describe(), reason, wait)
        if not (pause or _sleep)(wait):
            return None
        delay = min(delay * 2, MAX_WAIT_S)


def _sleep(delay: float) -> bool:
    time.sleep(delay)
    return True
