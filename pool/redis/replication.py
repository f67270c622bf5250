"""Durability against a failover: WAIT for replicas after the writes a caller must not lose.

Redis replicates asynchronously: a write the master acknowledged may not have reached any replica when the master
fails, and a promoted replica then lacks it. With ``RedisSettings(wait_replicas=N)`` the queue's writes that
matter (an enqueue, a job's start, its result) are followed by ``WAIT N timeout`` on the same connection, which
answers how many replicas have everything that connection wrote. Fewer than N is ``NotReplicated``: the write
was made on the master but may not survive its failover. The enqueuer gets that error (enqueueing again with the
same ``_job_id`` is safe: it creates the job only if it is gone); the worker does not run a job whose start was
not confirmed, and writes a result again until it is confirmed (both are safe to repeat). Cost: one more command
per call, and the replicas' round trip in its latency (see docs/sentinel.md for figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError


class NotReplicated(RedisError):
    """Fewer replicas than asked confirmed a write within the timeout: it may not survive a failover."""

    def __init__(self, what: str, confirmed: int, wanted: int, timeout_s: float) -> None:
        super().__init__(
            f"{what}: written on the master, but {confirmed} of {wanted} replicas confirmed it within {timeout_s:g}s;"
            " it may not survive a failover"
        )
        self.confirmed = confirmed
        self.replies: list[Any] = []  # the replies of the writes themselves (they were made)


@dataclass(frozen=True)
class Durability:
    """How many replicas must confirm a write, and how long to wait for them (WAIT's arguments)."""

    replicas: int
    timeout_ms: int

    @classmethod
    def from_settings(cls, replicas: int, timeout_s: float) -> Durability | None:
        return cls(replicas, max(int(timeout_s * 1000), 1)) if replicas > 0 else None

    @property
    def wait_args(self) -> tuple[str, int, int]:
        return ("WAIT", self.replicas, self.timeout_ms)

    def check(self, confirmed: int, what: str) -> None:
        if confirmed < self.replicas:
            raise NotReplicated(what, confirmed, self.replicas, self.timeout_ms / 1000)
