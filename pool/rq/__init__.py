"""rq's queue API for synchronous code, on pool: change ``from rq import Queue`` to ``from pool.rq import Queue``.

    from redis import Redis
    from pool.rq import Queue

    q = Queue('low', connection=Redis())
    job = q.enqueue(count_words_at_url, 'http://nvie.com', job_timeout='3m', result_ttl=3600)
    job.latest_result(timeout=10).return_value

Jobs go to the same Redis keys, through the same scripts, as the asyncio client's: ``pool worker`` / ``pool
start`` runs them. The worker registers the functions (``functions = [count_words_at_url]``) and calls rq
functions (no ``ctx``) as rq does when they are marked so: ``func(f, takes_ctx=False)``, or decorated with
``@job``. See docs/rq.md.
"""

from .decorators import DelayedFunction, job, rq_function
from .exceptions import DuplicateJobError, NoSuchJobError, TimeoutFormatError
from .job import Job, JobStatus, Result
from .options import Callback, Dependency, EnqueueData
from .queue import Queue

__all__ = [
    "Callback",
    "DelayedFunction",
    "Dependency",
    "DuplicateJobError",
    "EnqueueData",
    "Job",
    "JobStatus",
    "NoSuchJobError",
    "Queue",
    "Result",
    "TimeoutFormatError",
    "job",
    "rq_function",
]
