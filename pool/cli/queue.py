"""``pool queue info|list|empty|delete`` and ``pool failed list|show|requeue|purge``."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from ..client.connections import PoolRedis, create_pool
from ..redis.settings import RedisSettings


def add_commands(settings_command: Callable[..., argparse.ArgumentParser]) -> None:
    """Added by pool/cli/commands.py with its ``settings_command``, so these take SETTINGS, --redis and -v as every
    command."""
    queue = settings_command(
        "queue", "Inspect or clear the queue: info, list, empty, delete.", ["info", "list", "empty", "delete"]
    )
    queue.add_argument("--yes", action="store_true", help="confirm 'delete' (removes every key of the queue)")
    failed = settings_command(
        "failed",
        "The failed-job registry: list, show ID, requeue ID|--all, purge.",
        ["list", "show", "requeue", "purge"],
    )
    failed.add_argument("job_id", nargs="?", help="for show and requeue")
    failed.add_argument("--all", action="store_true", help="requeue every failed job")


async def _with_pool(settings: RedisSettings, queue_name: str, action: Callable[[PoolRedis], Awaitable[int]]) -> int:
    redis = await create_pool(settings, default_queue_name=queue_name)
    try:
        return await action(redis)
    finally:
        await redis.aclose()


def cmd_queue(args: argparse.Namespace) -> int:
    from ..utils import run_on_best_loop
    from .common import UsageError, redis_target

    if args.action == "delete" and not args.yes:
        raise UsageError("'queue delete' removes every job, result and record of the queue: add --yes")
    settings, queue_name = redis_target(args)

    async def act(redis: PoolRedis) -> int:
        if args.action == "info":
            info = await redis.queue_info()
            print(f"queue {queue_name!r}: " + " ".join(f"{k}={v}" for k, v in info.items()))
        elif args.action == "list":
            for job_id, status in await redis.job_statuses():
                print(f"{job_id}\t{status.value}")
        elif args.action == "empty":
            print(f"removed {await redis.empty_queue()} waiting jobs")
        else:
            print(f"deleted {await redis.delete_queue()} keys")
        return 0

    return int(run_on_best_loop(_with_pool(settings, queue_name, act)))


def cmd_failed(args: argparse.Namespace) -> int:
    from ..utils import run_on_best_loop
    from .common import Failure, UsageError, redis_target

    if args.action in ("show", "requeue") and not args.job_id and not (args.action == "requeue" and args.all):
        raise UsageError(f"'failed {args.action}' needs a job id" + (" or --all" if args.action == "requeue" else ""))
    settings, queue_name = redis_target(args)

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
            print(f"requeued {len(done)} jobs")
            if not done and not args.all:
                raise Failure(f"no failed job {args.job_id!r}")
        else:
            print(f"purged {await redis.purge_failed()} failed jobs")
        return 0

    return int(run_on_best_loop(_with_pool(settings, queue_name, act)))


COMMANDS = {"queue": cmd_queue, "failed": cmd_failed}
