"""Settings for tests/test_poison_jobs.py, run as ``pool worker tests.apps.poison.<Settings>``: jobs and payloads
that could take their worker down (a decoder crash, BaseExceptions raised by a job)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from pool.storage.serializers import msgpack_deserializer

DECODER_KILLER = b"kill-the-decoder"  # a payload holding these bytes kills the process that decodes it


class Boom(BaseException):
    """A job's own BaseException that is not an Exception."""


async def noop(ctx: dict[str, Any], *args: Any) -> int:
    await ctx["redis"].incr("runs:" + ctx["job_id"])
    return len(args)


_RAISED: dict[str, type[BaseException]] = {
    "Boom": Boom,
    "GeneratorExit": GeneratorExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "CancelledError": asyncio.CancelledError,
}


async def raiser(ctx: dict[str, Any], kind: str) -> None:
    """Raise the BaseException named ``kind`` from the job itself (counting the run first)."""
    await ctx["redis"].incr("runs:" + ctx["job_id"])
    raise _RAISED[kind](f"raised by {ctx['job_id']}")


def sync_raiser(ctx: dict[str, Any], kind: str) -> None:
    """The same from a sync job (it runs in a thread)."""
    raise _RAISED[kind](f"raised by {ctx['job_id']}")


def killing_deserializer(data: bytes) -> dict[str, Any]:
    """The default decoder, except that it SIGKILLs its own process on a marked payload: a stand-in for any
    decoder crash (a C extension's segfault, a pickle payload that exits)."""
    if DECODER_KILLER in data:
        os.kill(os.getpid(), signal.SIGKILL)
    return msgpack_deserializer(data)


class WorkerSettings:
    functions = [noop, raiser, sync_raiser]
    heartbeat_interval = 0.2
    max_tries = 2
    max_jobs = 1  # a job that kept its slot would stop every later job


class KillingDecoderSettings(WorkerSettings):
    job_deserializer = staticmethod(killing_deserializer)
