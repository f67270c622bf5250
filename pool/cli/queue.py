"""``pool queue info|list|empty|delete``, ``pool job ID`` and ``pool failed list|show|requeue|purge``.

They only look at a queue, so ``--queue NAME`` may stand in for the settings. What removes data (``queue empty``,
``queue delete``, ``failed purge``) asks first on a terminal, and needs ``--yes`` otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime

from ..client.connections import PoolRedis, create_pool
from ..client.jobs import Job, JobStatus
from ..redis.settings import RedisSettings
from ..storage.codecs import JobDef, progress_of
from ..storage.progress import JobProgress
from ..utils import plural, truncate

LIST_CONCURRENCY = 100  # job definitions read at once by `queue list`


def add_commands(settings_command: Callable[..., argparse.ArgumentParser]) -> None:
    """Added by pool/cli/commands.py with its ``settings_command``, so these take SETTINGS, --redis and -v as every
    command."""
    queue = settings_command(
        "queue",
        "Inspect or clear the queue: info, list, empty, delete.",
        ["info", "list", "empty", "delete"],
        looks=True,
    )
    queue.add_argument("--yes", action="store_true", help="'empty' and 'delete' without asking")
    job = settings_command("job", "Show one job: its status, function, try, progress and metadata.", looks=True)
    job.add_argument("job_id", nargs="?", help="the job's id")
    failed = settings_command(
        "failed",
        "The failed-job registry: list, show ID, requeue ID|--all, purge.",
        ["list", "show", "requeue", "purge"],
        looks=True,
    )
    failed.add_argument("job_id", nargs="?", help="for show and requeue")
    failed.add_argument("--all", action="store_true", help="requeue every failed job")
    failed.add_argument("--yes", action="store_true", help="'purge' without asking")


async def _with_pool(settings: RedisSettings, queue_name: str, action: Callable[[PoolRedis], Awaitable[int]]) -> int:
    redis = await create_pool(settings, default_queue_name=queue_name)
    try:
        return await action(redis)
    finally:
        await redis.aclose()


def confirm(args: argparse.Namespace, question: str, what: str) -> None:
    """Go on with ``--yes``, or when the user says so on a terminal; else a usage error (a script must say
    --yes) or Failure (the user said no)."""
    from .common import Failure, UsageError

    if args.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{what}: add --yes")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise Failure("cancelled, nothing removed")


def cmd_queue(args: argparse.Namespace) -> int:
    from ..utils import run_on_best_loop
    from .common import redis_target

    settings, queue_name = redis_target(args)
    if args.action == "delete":
        confirm(
            args,
            f"delete every job, result and record of queue {queue_name!r}?",
            "'queue delete' removes every job, result and record of the queue",
        )
    elif args.action == "empty":
        confirm(args, f"remove every waiting job of queue {queue_name!r}?", "'queue empty' removes every waiting job")

    async def act(redis: PoolRedis) -> int:
        if args.action == "info":
            info = await redis.queue_info()
            print(f"queue {queue_name!r}: " + " ".join(f"{k}={v}" for k, v in info.items()))
        elif args.action == "list":
            await list_jobs(redis, queue_name)
        elif args.action == "empty":
            print(f"removed {plural(await redis.empty_queue(), 'waiting job')}")
        else:
            print(f"deleted {plural(await redis.delete_queue(), 'key')}")
        return 0

    return int(run_on_best_loop(_with_pool(settings, queue_name, act)))


async def list_jobs(redis: PoolRedis, queue_name: str) -> None:
    """One line per job: id, function, try, enqueue time, status."""
    statuses = await redis.job_statuses()
    if not statuses:
        print(f"no jobs in queue {queue_name!r}")
        return
    rows = []
    for start in range(0, len(statuses), LIST_CONCURRENCY):
        chunk = statuses[start : start + LIST_CONCURRENCY]
        rows += await asyncio.gather(*(_row(redis, queue_name, job_id, status) for job_id, status in chunk))
    width = max(len("job id"), *(len(r[0]) for r in rows))
    function_width = max(len("function"), *(len(r[1]) for r in rows))
    print(f"{'job id':<{width}}  {'function':<{function_width}}  {'try':>3}  {'enqueued':<19}  status")
    for job_id, function, job_try, enqueued, status in rows:
        print(f"{job_id:<{width}}  {function:<{function_width}}  {job_try:>3}  {enqueued:<19}  {status}")


async def _row(redis: PoolRedis, queue_name: str, job_id: str, status: JobStatus) -> tuple[str, str, str, str, str]:
    try:
        info = await Job(job_id, redis, _queue_name=queue_name, _deserializer=redis.job_deserializer).info()
    except Exception:  # a payload this reader cannot decode (another serializer): still list the job
        info = None
    if info is None:
        return job_id, "?", "?", "?", status.value
    progress = progress_of(info)
    shown = status.value if progress is None or progress.progress is None else f"{status.value} {_share(progress)}"
    return job_id, info.function, str(info.job_try or 0), _local_time(info.enqueue_time), shown


def _share(progress: JobProgress) -> str:
    """A progress figure as a person reads it: a percentage for the usual 0.0-1.0, else the number."""
    value = progress.progress
    if value is None:
        return "-"
    return f"{value:.0%}" if 0 <= value <= 1 else f"{value:g}"


def cmd_job(args: argparse.Namespace) -> int:
    from ..utils import run_on_best_loop
    from .common import Failure, UsageError, redis_target

    if args.queue and args.settings and args.job_id is None:
        args.job_id, args.settings = args.settings, None  # `pool job --queue q ID`: no SETTINGS
    if not args.job_id:
        raise UsageError("'job' needs a job id")
    settings, queue_name = redis_target(args)

    async def act(redis: PoolRedis) -> int:
        job = Job(args.job_id, redis, _queue_name=queue_name, _deserializer=redis.job_deserializer)
        info, status = await job.info(), await job.status()
        if info is None:
            raise Failure(f"no job {args.job_id!r} in queue {queue_name!r}")
        for line in describe_job(args.job_id, info, status):
            print(line)
        return 0

    return int(run_on_best_loop(_with_pool(settings, queue_name, act)))


def describe_job(job_id: str, info: JobDef, status: JobStatus) -> list[str]:
    """``pool job``'s lines: the job, then what it last reported, if anything."""
    lines = [
        f"job {job_id}: status={status.value} function={info.function} try={info.job_try or 0} "
        f"enqueued={_local_time(info.enqueue_time)}"
    ]
    progress = progress_of(info)
    if progress is not None:
        lines.append(f"progress: {_share(progress)} (reported {_local_time(progress.updated)})")
        if progress.meta:
            shown = " ".join(f"{key}={value!r}" for key, value in progress.meta.items())
            lines.append("meta: " + truncate(shown, 500))
    return lines


def _local_time(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def cmd_failed(args: argparse.Namespace) -> int:
    from ..utils import run_on_best_loop
    from .common import Failure, UsageError, redis_target

    if args.queue and args.settings and args.job_id is None and args.action in ("show", "requeue"):
        args.job_id, args.settings = args.settings, None  # `pool failed show --queue q ID`: no SETTINGS
    if args.action in ("show", "requeue") and not args.job_id and not (args.action == "requeue" and args.all):
        raise UsageError(f"'failed {args.action}' needs a job id" + (" or --all" if args.action == "requeue" else ""))
    if args.action == "requeue" and args.all and args.job_id:
        raise UsageError("'failed requeue' takes a job id or --all, not both")
    if args.all and args.action != "requeue":
        raise UsageError(f"--all is for 'failed requeue', not 'failed {args.action}'")
    settings, queue_name = redis_target(args)
    if args.action == "purge":
        confirm(args, f"purge every failed job of queue {queue_name!r}?", "'failed purge' removes every failed job")

    async def act(redis: PoolRedis) -> int:
        if args.action == "list":
            for entry in await redis.failed_jobs():
                print(f"{entry.job_id}\t{entry.function}\t{type(entry.result).__name__}: {entry.result}")
        elif args.action == "show":
            record = next((r for r in await redis.failed_jobs() if r.job_id == args.job_id), None)
            if record is None:
                raise Failure(f"no failed job {args.job_id!r}")
            print(f"job {record.job_id}: {record.function}{record.args!r} {record.kwargs!r} (try {record.job_try})")
            print(f"failed at {record.finish_time}: {type(record.result).__name__}: {record.result}")
            print(record.traceback or "(no traceback)")
        elif args.action == "requeue":
            ids = [r.job_id for r in await redis.failed_jobs()] if args.all else [args.job_id]
            done = [i for i in ids if i and await redis.requeue_failed(i)]
            print(f"requeued {plural(len(done), 'job')}")
            if not done and not args.all:
                raise Failure(f"no failed job {args.job_id!r}")
        else:
            print(f"purged {plural(await redis.purge_failed(), 'failed job')}")
        return 0

    return int(run_on_best_loop(_with_pool(settings, queue_name, act)))


COMMANDS = {"queue": cmd_queue, "job": cmd_job, "failed": cmd_failed}
