"""``pool migrate-from-arq SETTINGS``: move the jobs waiting in arq's queue (queued and deferred) into pool's.

The move itself, and why an interrupted run never loses or doubles a job, is pool/client/arq_migration.py. Here:
the options, the pool client the settings describe, one line per job that did not move and the counts at the end.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Callable
from typing import Any

from ..client.arq_migration import DEFAULT_ARQ_QUEUE, ArqDeserializer, ArqMigration, Outcome, PickleRefused, Tally
from ..client.connections import create_pool
from ..storage.keys import DEFAULT_QUEUE_NAME
from ..storage.serializers import msgpack_deserializer
from ..utils import import_string, plural
from .common import Failure, UsageError, load_settings, one_attempt, redis_settings_override

PICKLE_WHY = (
    "arq's jobs in {queue!r} are pickled (arq's default serializer); unpickling runs whatever code the data names, "
    "so pool reads them only with --serializer pickle, to be given if everything that can write to this Redis "
    "is trusted"
)


def add_command(settings_command: Callable[..., argparse.ArgumentParser]) -> None:
    sub = settings_command(
        "migrate-from-arq",
        "Move the jobs waiting in arq's queue (queued and deferred) into pool's queue, same ids, arguments, "
        "due times and tries; jobs arq is running are left to it.",
    )
    sub.add_argument(
        "--arq-queue", default=DEFAULT_ARQ_QUEUE, metavar="NAME", help=f"arq's queue (default: {DEFAULT_ARQ_QUEUE})"
    )
    sub.add_argument(
        "--serializer",
        metavar="pickle|msgpack|DOTTED",
        help="how arq's jobs were serialized: pickle (arq's default: must be given, as unpickling runs code), "
        "msgpack (the default here), or the import path of arq's job_deserializer",
    )
    sub.add_argument("--dry-run", action="store_true", help="report what would move; change nothing")


def deserializer_for(name: str | None) -> tuple[ArqDeserializer, bool]:
    """arq's deserializer for --serializer, and whether pickled payloads may be read (only when the user said
    pickle, or named a deserializer of their own)."""
    if name is None or name == "msgpack":
        return msgpack_deserializer, False
    if name == "pickle":
        return pickle.loads, True
    if "." not in name:
        raise UsageError(f"--serializer: expected pickle, msgpack or a dotted path, got {name!r}")
    try:
        found = import_string(name)
    except Exception as exc:
        raise UsageError(f"--serializer: cannot import {name!r}: {type(exc).__name__}: {exc}") from None
    if not callable(found):
        raise UsageError(f"--serializer: {name!r} is not callable")
    return found, True


def cmd_migrate_from_arq(args: argparse.Namespace) -> int:
    from ..utils import run_on_best_loop
    from ..worker.main import get_kwargs

    deserializer, pickle_allowed = deserializer_for(args.serializer)
    kwargs = get_kwargs(load_settings(args.settings))
    functions = _function_names(args.settings, kwargs)
    settings = one_attempt(redis_settings_override(args.redis) or kwargs.get("redis_settings") or _default_settings())
    queue_name = kwargs.get("queue_name") or DEFAULT_QUEUE_NAME

    async def migrate() -> Tally:
        pool = await create_pool(
            settings,
            job_serializer=kwargs.get("job_serializer"),
            default_queue_name=queue_name,
            queue_partitions={queue_name: kwargs.get("queue_partitions", 1)},
            **{k: kwargs[k] for k in ("expires_extra_ms", "max_payload_bytes") if k in kwargs},
        )
        try:
            migration = ArqMigration(
                pool,
                deserializer,
                args.arq_queue,
                pickle_allowed=pickle_allowed,
                dry_run=args.dry_run,
                functions=functions,
            )
            try:
                await migration.check_serializer()
            except PickleRefused:
                raise UsageError(PICKLE_WHY.format(queue=args.arq_queue)) from None
            return await migration.run(lambda outcome: _report(outcome, args))
        finally:
            await pool.aclose()

    tally: Tally = run_on_best_loop(migrate())
    print(_summary(tally, args.arq_queue, queue_name, args.dry_run))
    return 1 if tally.failed else 0


def _function_names(path: str, kwargs: dict[str, Any]) -> set[str]:
    """The names the settings' workers run (functions and cron jobs): what a moved job may name."""
    from ..worker.checks import SettingsError, check_cron_jobs, resolve_functions

    try:
        functions = resolve_functions(kwargs.get("functions", []))
        cron_jobs = check_cron_jobs(kwargs.get("cron_jobs"))
    except SettingsError as exc:
        raise Failure(f"invalid settings {path!r}: {exc}") from None
    return {f.name for f in functions} | {c.name for c in cron_jobs}


def _default_settings() -> Any:
    from ..redis.settings import RedisSettings

    return RedisSettings()


def _report(outcome: Outcome, args: argparse.Namespace) -> None:
    """One line per job that stays in arq; with --dry-run or -v, per job moved too."""
    if outcome.kind == "running":
        print(f"left running in arq: {outcome.job_id} ({outcome.detail})")
    elif outcome.kind == "aborted":
        print(f"left in arq: {outcome.job_id} ({outcome.detail})")
    elif outcome.kind == "failed":
        print(f"not moved: {outcome.job_id}: {outcome.detail}")
    elif outcome.kind == "moved" and (args.dry_run or args.verbose):
        print(f"{'would move' if args.dry_run else 'moved'}: {outcome.job_id} {outcome.detail}")


def _summary(tally: Tally, arq_queue: str, queue_name: str, dry_run: bool) -> str:
    moved = "would move" if dry_run else "moved"
    parts = [
        f"{moved} {plural(tally.moved, 'job')} from arq's {arq_queue!r} to pool's {queue_name!r} "
        f"({tally.deferred} deferred)",
        f"left running in arq: {tally.running}",
        *([f"aborted, left to arq: {tally.aborted}"] if tally.aborted else []),
        f"failed (left in arq, each said above): {tally.failed}",
    ]
    return "; ".join(parts) + (" (dry run: nothing changed)" if dry_run else "")


COMMANDS = {"migrate-from-arq": cmd_migrate_from_arq}
