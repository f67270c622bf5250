"""Refusing a Redis that may evict the queue's keys.

With a ``maxmemory-policy`` other than ``noeviction``, a Redis that reaches its ``maxmemory`` deletes keys to
make room, and nothing tells the queue: a stream evicted takes every queued job with it, an evicted job hash
fails its job as expired, an evicted result is a result lost. ``volatile-*`` policies are no safer here, as
they evict keys that have a TTL, and queued job hashes (``_expires``), results (``keep_result``) and the cron
lock all have one. So workers and the supervisor refuse to start unless the policy is ``noeviction``, unless
the settings say ``allow_eviction = True`` (a Redis that never reaches maxmemory, say): then they warn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError

logger = logging.getLogger("pool.worker")

SAFE_POLICY = "noeviction"


class EvictionPolicyError(RedisError):
    """Redis may evict the queue's keys (one line for the user, exit 1)."""


def judge_policy(policy: str | None, where: str, allowed: bool) -> None:
    """Raise ``EvictionPolicyError`` for an evicting policy, or warn when the settings allow it; ``policy``
    None (CONFIG GET refused: managed Redis, ACL) is only warned about, as the policy cannot be known."""
    if policy is None:
        logger.warning(
            "could not read Redis's maxmemory-policy at %s; make sure it is %r, or jobs may be evicted",
            where,
            SAFE_POLICY,
        )
    elif policy != SAFE_POLICY and not allowed:
        raise EvictionPolicyError(
            f"Redis at {where} has maxmemory-policy {policy!r}, which can evict queued jobs and results without "
            f"a trace; set it to {SAFE_POLICY!r} (CONFIG SET maxmemory-policy {SAFE_POLICY}), or set "
            "allow_eviction = True in the worker settings to run anyway"
        )
    elif policy != SAFE_POLICY:
        logger.warning(
            "Redis at %s has maxmemory-policy %r: jobs and results WILL BE LOST if it reaches maxmemory "
            "(allow_eviction is set, so running anyway)",
            where,
            policy,
        )


def policy_from_reply(reply: Mapping[Any, Any]) -> str | None:
    """The policy from a CONFIG GET reply (keys and values may be bytes or str)."""
    for key, value in reply.items():
        name = key.decode() if isinstance(key, bytes) else key
        if name == "maxmemory-policy" and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
