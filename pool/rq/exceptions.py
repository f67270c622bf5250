"""rq's exceptions, by rq's names (``rq.exceptions``), for what ``pool.rq`` raises."""

from __future__ import annotations

from typing import Any


class NoSuchJobError(Exception):
    """``Job.fetch`` of an id the queue knows nothing of (not queued, running, nor kept as a result or failure)."""


class DuplicateJobError(Exception):
    """An enqueue whose ``job_id`` is taken: a job with that id is queued, running, or its result is kept.

    pool never overwrites a job (rq without ``unique=True`` does): an id names one job until its result expires.
    ``enqueue_many`` raises it after enqueuing the other jobs: ``jobs`` holds what it would have returned, None
    where the id was taken, and ``job_ids`` the ids refused."""

    def __init__(self, message: str, *, job_ids: list[str], jobs: list[Any] | None = None) -> None:
        super().__init__(message)
        self.job_ids = job_ids
        self.jobs = jobs if jobs is not None else []


class TimeoutFormatError(ValueError):
    """A ``job_timeout``/``ttl``/... that is neither a number nor rq's ``'<digits><d|h|m|s>'``."""
