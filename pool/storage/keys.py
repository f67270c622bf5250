"""Every Redis key name of a queue, in one place.

All keys of one queue share the hash tag ``{queue_name}`` so every Lua script touches a single Redis Cluster
slot; the same code then runs unchanged on a cluster. Nothing outside this module builds a key by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_QUEUE_NAME = "default"
CONSUMER_GROUP = "workers"
PRIORITIES = (0, 1, 2, 3)  # a job's _priority; each has its own stream ("lane"), read highest first
TOP_PRIORITY = PRIORITIES[-1]  # what _at_front=True means


def validate_queue_name(queue_name: str) -> str:
    """Reject names that would break the hash tag (braces), be invisible in logs (empty), or read as another
    queue's partition (``name#3`` is partition 3 of ``name``'s hash tag)."""
    if not queue_name or "{" in queue_name or "}" in queue_name:
        raise ValueError(f"invalid queue name {queue_name!r}: it must be non-empty and contain no braces")
    base, hash_sign, number = queue_name.rpartition("#")
    if hash_sign and base and number.isdigit():
        raise ValueError(f"invalid queue name {queue_name!r}: a name ending in #<number> is a partition's hash tag")
    return queue_name


def _prefix(queue_name: str, partition: int) -> str:
    return f"pool:{{{queue_name}}}:" if partition == 0 else f"pool:{{{queue_name}#{partition}}}:"


_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def glob_escape(text: str) -> str:
    """``text`` as a SCAN MATCH / KEYS pattern matching only itself: a queue name or job id may hold glob
    characters (``q?`` would otherwise match queue ``qa``)."""
    return text.translate(_GLOB_SPECIAL)


ALL_RESULTS_PATTERN = "pool:{*}:result:*"  # SCAN MATCH for the results of every queue (see ``result_key_parts``)


def result_key_parts(key: str) -> tuple[str, str] | None:
    """(queue name, job id) of a result key of any queue; None for a key that is not one (the pattern above
    also matches e.g. a job hash whose id holds ``}:result:``: queue names hold no braces, so the tag ends at
    the first ``}``)."""
    if not key.startswith("pool:{"):
        return None
    tag, sep, rest = key[len("pool:{") :].partition("}:result:")
    if not sep or not tag or "}" in tag:
        return None
    base, hash_sign, number = tag.rpartition("#")  # a partition's tag: queue#p
    return (base if hash_sign and base and number.isdigit() else tag), rest


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The key names of one queue, or of one partition of a partitioned queue (pool/storage/partitions.py):
    partition 0 has the queue's own hash tag (``pool:{default}:…``, the layout of an unpartitioned queue),
    partition p > 0 the tag ``{default#p}``, so a cluster spreads the partitions over its masters. ``prefix`` is
    handed to Lua scripts, which build the names of the keys they touch from it; the caller also declares each
    of those names in the call's KEYS (see pool/storage/scripts.py), built by the methods here."""

    queue_name: str
    partition: int = 0

    def __post_init__(self) -> None:
        validate_queue_name(self.queue_name)
        prefix = _prefix(self.queue_name, self.partition)
        object.__setattr__(self, "prefix", prefix)
        # the four lanes in priority order (0 to 3): the first four KEYS of every script that touches a lane
        object.__setattr__(self, "lane_keys", tuple(self._lane(prefix, priority) for priority in PRIORITIES))

    prefix: str = field(init=False, repr=False, compare=False)  # from queue_name and partition
    lane_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)

    @staticmethod
    def _lane(prefix: str, priority: int) -> str:
        return f"{prefix}stream" if priority == 0 else f"{prefix}stream:{priority}"

    @property
    def partition_count(self) -> str:
        """How many partitions the queue has, as producers and workers agreed (kept in partition 0)."""
        return _prefix(self.queue_name, 0) + "partitions"

    def pattern(self, key_start: str = "") -> str:
        """A SCAN MATCH pattern for this queue's keys that start with ``prefix + key_start`` (e.g. ``"job:"``);
        everything but the final ``*`` is escaped, so other queues whose names it would glob-match are safe."""
        return glob_escape(self.prefix + key_start) + "*"

    @property
    def slot_guard(self) -> str:
        """A key nothing ever writes, declared by FETCH on Redis Cluster: Redis refuses a call that declares a
        missing key whole (ASK, TRYAGAIN) while the call's slot migrates, so a FETCH that runs has its slot wholly
        on its node, where the keys it could not declare (the jobs it reads) are all served (see FETCH)."""
        return self.prefix + "slot-guard"

    @property
    def stream(self) -> str:
        """Ready jobs, read by the consumer group; delivered-but-unacked entries are the running jobs."""
        return self.prefix + "stream"

    def lane(self, priority: int) -> str:
        """The stream of one priority. Priority 0 (the default) is ``stream`` itself."""
        return self.lane_keys[priority]

    @property
    def lanes(self) -> list[str]:
        """Every priority's stream, highest priority first."""
        return [self.lane(priority) for priority in reversed(PRIORITIES)]

    def running(self, function: str) -> str:
        """Set of job ids of a concurrency-limited function that are running (``func(max_concurrency=)``)."""
        return f"{self.prefix}running:{function}"

    @property
    def parked_functions(self) -> str:
        """Set of the functions that have (or had) a ``parked`` list: how readers find them without a SCAN."""
        return self.prefix + "parked-functions"

    def parked(self, function: str) -> str:
        """List of job ids of a concurrency-limited function that waited for a free slot, oldest first."""
        return f"{self.prefix}parked:{function}"

    @property
    def deferred(self) -> str:
        """Sorted set job_id -> run-at (ms): deferred jobs and retries waiting for their time."""
        return self.prefix + "deferred"

    @property
    def aborts(self) -> str:
        """Sorted set job_id -> request time (ms) of running jobs asked to abort."""
        return self.prefix + "abort"

    @property
    def failed(self) -> str:
        """Sorted set job_id -> failure time (ms): the failed-job registry (dead letters)."""
        return self.prefix + "failed"

    def failed_job(self, job_id: str) -> str:
        """The failure's result payload (function, args, exception, traceback), kept for failure_ttl."""
        return f"{self.prefix}failed:{job_id}"

    def dependents(self, job_id: str) -> str:
        """Set of job ids waiting for this job to finish."""
        return f"{self.prefix}dependents:{job_id}"

    @property
    def waiting(self) -> str:
        """Set of ids of jobs waiting for dependencies (state w): how ``queue_info`` counts them and
        ``empty_queue`` finds them, as nothing else lists them."""
        return self.prefix + "waiting"

    @property
    def releasing(self) -> str:
        """Hash job_id -> '1' (it succeeded) or '0' (it failed) of finished jobs whose dependents are still to be
        released: COMPLETE and ABORT record it, RELEASE_DEPENDENTS (the step after them) does the release."""
        return self.prefix + "releasing"

    @property
    def workers(self) -> str:
        """Sorted set worker_id -> expiry (ms) indexing the per-worker health keys."""
        return self.prefix + "workers"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def result(self, job_id: str) -> str:
        return f"{self.prefix}result:{job_id}"

    def nonce(self, job_id: str) -> str:
        """The nonce of the ENQUEUE call that created the job, kept a minute so a replay of it is recognised."""
        return f"{self.prefix}nonce:{job_id}"

    def notify(self, job_id: str) -> str:
        """Stream of a job's completion notifications (its last one only, carrying the result payload), read
        without consuming by callers blocked in Job.result(); written only when a caller is waiting."""
        return f"{self.prefix}done:{job_id}"

    def waiters(self, job_id: str) -> str:
        """Set (with an expiry) while a caller waits in Job.result(): the completion then notifies."""
        return f"{self.prefix}wait:{job_id}"

    # --- the per-job keys a script call declares (see pool/storage/scripts.py), as tuples to extend KEYS with ---

    def enqueued(self, job_id: str) -> tuple[str, str, str]:
        """What ENQUEUE touches of a job it creates: its hash, its result (uniqueness) and its call's nonce."""
        p = self.prefix
        return p + "job:" + job_id, p + "result:" + job_id, p + "nonce:" + job_id

    def dependency(self, job_id: str) -> tuple[str, str, str]:
        """What ENQUEUE touches of a job another one depends on: its hash, its failed record, its dependents."""
        p = self.prefix
        return p + "job:" + job_id, p + "failed:" + job_id, p + "dependents:" + job_id

    def job_and_result(self, job_id: str) -> tuple[str, str]:
        """A job's hash and result: what START touches of a delivered job (the result when the hash is gone), and
        SWEEP_PARKED of a parked one."""
        p = self.prefix
        return p + "job:" + job_id, p + "result:" + job_id

    def finished(self, job_id: str) -> tuple[str, str, str, str, str]:
        """What COMPLETE and ABORT touch of the job they finish: its hash, result, waiters' mark, notification
        stream and dependents."""
        p = self.prefix
        return (
            p + "job:" + job_id,
            p + "result:" + job_id,
            p + "wait:" + job_id,
            p + "done:" + job_id,
            p + "dependents:" + job_id,
        )

    def slots(self, function: str) -> tuple[str, str]:
        """The keys of a function's concurrency slots: the jobs holding one, the jobs parked for one."""
        p = self.prefix
        return p + "running:" + function, p + "parked:" + function

    def fetched(self, consumer: str) -> str:
        """What a consumer's last FETCH read (its call's token and entries, for a minute): a replay of that call
        (its reply lost) answers the same entries rather than reading the next ones."""
        return f"{self.prefix}fetched:{consumer}"

    def health(self, worker_id: str) -> str:
        return f"{self.prefix}health:{worker_id}"

    @property
    def cron_leader(self) -> str:
        """The lock whose holder enqueues cron ticks (a token with a short TTL)."""
        return self.prefix + "cron-leader"

    @property
    def supervisors(self) -> str:
        """Sorted set supervisor_id -> expiry (ms) indexing the per-supervisor health keys."""
        return self.prefix + "supervisors"

    def supervisor_health(self, supervisor_id: str) -> str:
        return f"{self.prefix}supervisor:{supervisor_id}"

    def cron_fence(self, cron_name: str) -> str:
        """The last tick (ms) of a cron job that was enqueued: a tick is enqueued at most once."""
        return f"{self.prefix}cron:{cron_name}"
