"""Poison jobs: payloads and jobs that could take their worker down, and with it every job after them.

A value nested too deep (an exception wrapping an exception ... 250 deep) makes msgpack's decoder recurse in C
and segfault the worker before Python's recursion limit; were the payload decoded before ``max_tries`` is
checked, such a job would kill every worker that picked it up, forever. So both ends bound the nesting, and
``max_tries`` is checked on the attempt count START returns before the payload is decoded: a job that kills its
worker by any means is failed for good after ``max_tries``.

Workers here are real ``pool worker tests.apps.poison.<Settings>`` processes (heartbeat 0.2 s, max_tries 2).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pool import Job, PoolRedis
from pool.jobs import JobStatus
from pool.storage.keys import QueueKeys
from pool.storage.serializers import (
    MAX_NESTING,
    DeserializationError,
    SerializationError,
    msgpack_deserializer,
    msgpack_serializer,
)
from pool.utils import now_ms
from tests.apps.poison import DECODER_KILLER
from tests.helpers import wait_for
from tests.worker_utils import WorkerProcess, running_worker, worker_env

REPO = Path(__file__).resolve().parent.parent
KEYS = QueueKeys("default")
DEEP = 250  # levels of nesting that crashed msgpack's decoder (it died at ~200)
TOO_DEEP = re.compile(r"nested more than \d+ levels deep")


def deep_exception_ext(depth: int) -> msgpack.ExtType:
    """A ValueError wrapping a ValueError ... ``depth`` deep, encoded by hand as pool's exception extension
    (type 1: [module, qualname, packed args, message]), bypassing the encoder's depth check."""
    data = msgpack.packb(["builtins", "ValueError", msgpack.packb(["leaf"]), "leaf"])
    for _ in range(depth):
        data = msgpack.packb(["builtins", "ValueError", msgpack.packb([msgpack.ExtType(1, data)]), "wrapper"])
    return msgpack.ExtType(1, data)


def deep_exception(depth: int) -> ValueError:
    exc = ValueError("leaf")
    for _ in range(depth):
        exc = ValueError(exc)
    return exc


async def enqueue_with_payload(pool: PoolRedis, job_id: str, payload: bytes) -> None:
    """Enqueue ``noop`` normally, then replace its payload, as a producer without pool's checks would write it."""
    assert await pool.enqueue_job("noop", _job_id=job_id) is not None
    assert await pool.hset(KEYS.job(job_id), "d", payload) == 0


async def test_a_job_whose_payload_would_crash_the_decoder_fails_and_its_worker_survives(
    pool: PoolRedis, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    payload = msgpack.packb({"f": "noop", "a": [deep_exception_ext(DEEP)], "k": {}, "et": now_ms()})
    await enqueue_with_payload(pool, "deep", payload)
    innocent = await pool.enqueue_job("noop", 1, 2, _job_id="innocent")
    assert innocent is not None

    worker = spawn_worker("--burst", settings="tests.apps.poison.WorkerSettings")
    assert await worker.wait_exit(15) == 0, worker.output()[-3000:]
    info = await Job("deep", pool).result_info()
    assert info is not None and not info.success and info.job_try == 1
    assert TOO_DEEP.search(str(info.result)), repr(info.result)
    assert await innocent.result(timeout=1) == 2
    assert await pool.get("runs:deep") is None


async def test_a_job_whose_payload_kills_its_worker_is_failed_for_good_after_max_tries(
    pool: PoolRedis, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """Any decoder crash (here a deserializer that SIGKILLs its process) kills one worker per try; once START
    counts more than max_tries (2) attempts, the job is failed without decoding its payload."""
    payload = msgpack_serializer({"f": "noop", "a": [DECODER_KILLER], "k": {}, "et": now_ms()})
    await enqueue_with_payload(pool, "killer", payload)
    for _ in range(2):
        worker = spawn_worker("--burst", settings="tests.apps.poison.KillingDecoderSettings")
        assert await worker.wait_exit(15) == -signal.SIGKILL, worker.output()[-3000:]
        assert await Job("killer", pool).status() == JobStatus.in_progress

    last = spawn_worker("--burst", settings="tests.apps.poison.KillingDecoderSettings")
    assert await last.wait_exit(15) == 0, last.output()[-3000:]
    assert "max retries 2 exceeded" in last.output()
    info = await Job("killer", pool).result_info()
    assert info is not None and not info.success and info.job_try == 3
    assert info.function == "noop"
    assert "max 2 retries exceeded" in str(info.result)
    assert not await pool.exists(KEYS.job("killer"))


async def test_a_too_deep_value_is_refused_at_enqueue(pool: PoolRedis) -> None:
    with pytest.raises(SerializationError, match=TOO_DEEP.pattern):
        await pool.enqueue_job("noop", deep_exception(DEEP))
    assert await pool.xlen(KEYS.stream) == 0


async def deep_raiser(ctx: dict[str, Any]) -> None:
    raise deep_exception(DEEP)


READ_RESULT = """
import asyncio, sys
from pool import Job, RedisSettings, create_pool

async def main():
    redis = await create_pool(RedisSettings.from_dsn(sys.argv[1]))
    try:
        await Job(sys.argv[2], redis).result(timeout=5)
    except Exception as exc:
        print(f"raised {type(exc).__name__}: {exc}"[:300])
    await redis.aclose()

asyncio.run(main())
"""


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """Read in a separate process: a decoder crash there must fail the test, not kill pytest."""
    return subprocess.run([sys.executable, *args], env=worker_env(), capture_output=True, text=True, timeout=30)


async def test_a_job_raising_a_too_deep_exception_records_a_failure_that_reads_back(
    pool: PoolRedis, redis_url: str
) -> None:
    """The exception cannot be encoded, so the recorded failure says so; Job.result() and the failed-job
    registry read it back without a segfault in the decoder."""
    async with running_worker(redis_url, functions=[deep_raiser]) as worker:
        job = await pool.enqueue_job("deep_raiser", _job_id="deep-raiser")
        assert job is not None
        await wait_for(lambda: pool.exists(KEYS.result("deep-raiser")), timeout=5, message="the job's result")
        assert worker.jobs_failed == 1

    read = run_python("-c", READ_RESULT, redis_url, "deep-raiser")
    assert read.returncode == 0, (read.returncode, read.stderr[-2000:])
    assert "raised SerializationError: unable to serialize exception" in read.stdout, read.stdout
    assert TOO_DEEP.search(read.stdout), read.stdout

    listed = run_python("-m", "pool", "failed", "list", "tests.apps.poison.WorkerSettings", "--redis", redis_url)
    assert listed.returncode == 0, (listed.returncode, listed.stderr[-2000:])
    assert "deep-raiser\tdeep_raiser\tSerializationError" in listed.stdout, listed.stdout


async def test_a_job_raising_a_base_exception_fails_and_the_worker_serves_the_next_job(
    pool: PoolRedis, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """A BaseException that is not an Exception, raised by the job itself, is that job's failure: the job used
    to stay in_progress holding its slot (max_jobs=1 here, so nothing else ran), or, for KeyboardInterrupt,
    kill the worker on every try. A CancelledError the job raises itself (the worker did not cancel it) is a
    failure too, not a hand-back."""
    kinds = [("raiser", kind) for kind in ("Boom", "GeneratorExit", "KeyboardInterrupt", "CancelledError")] + [
        ("sync_raiser", kind) for kind in ("Boom", "GeneratorExit", "KeyboardInterrupt")
    ]
    for function, kind in kinds:
        assert await pool.enqueue_job(function, kind, _job_id=f"{function}-{kind}") is not None
    after = await pool.enqueue_job("noop", 1, _job_id="after")
    assert after is not None

    worker = spawn_worker("--burst", settings="tests.apps.poison.WorkerSettings")
    assert await worker.wait_exit(15) == 0, worker.output()[-3000:]
    for function, kind in kinds:
        info = await Job(f"{function}-{kind}", pool).result_info()
        assert info is not None, f"{function}({kind}) has no result"
        assert not info.success and info.job_try == 1, (function, kind, info)
        assert f"{kind}: raised by {function}-{kind}" in str(info.result), repr(info.result)
    assert await pool.get("runs:raiser-Boom") == b"1"
    assert await after.result(timeout=1) == 1


async def test_the_failed_registry_lists_a_record_too_deep_to_decode_with_the_reason(
    pool: PoolRedis, redis_url: str
) -> None:
    """A record pool did not write (a hand edit, another producer) nesting an exception 250 deep: ``pool failed
    list`` shows it with the reason it cannot be read, and the other records, rather than crash."""
    record = {"f": "noop", "a": [], "k": {}, "t": 1, "et": 0, "s": False, "st": 0, "ft": 0, "q": "default"}
    deep = msgpack.packb({**record, "r": deep_exception_ext(DEEP), "id": "deep"})
    await pool.set(KEYS.failed_job("deep"), deep)
    await pool.zadd(KEYS.failed, {"deep": 2})
    plain = msgpack.packb({**record, "r": "an error", "id": "plain"})
    await pool.set(KEYS.failed_job("plain"), plain)
    await pool.zadd(KEYS.failed, {"plain": 1})

    listed = run_python("-m", "pool", "failed", "list", "tests.apps.poison.WorkerSettings", "--redis", redis_url)
    assert listed.returncode == 0, (listed.returncode, listed.stderr[-2000:])
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("deep\t?\tDeserializationError: unable to deserialize job result"), lines
    assert TOO_DEEP.search(lines[0]), lines
    assert lines[1] == "plain\tnoop\tstr: an error", lines
    with pytest.raises(DeserializationError, match=TOO_DEEP.pattern):  # cannot be requeued: the record stays
        await pool.requeue_failed("deep")
    assert await pool.exists(KEYS.failed_job("deep"))


def test_values_nested_up_to_the_limit_round_trip_and_one_level_more_is_refused() -> None:
    deepest = deep_exception(MAX_NESTING - 1)  # MAX_NESTING exceptions in all
    decoded = msgpack_deserializer(msgpack_serializer({"r": deepest}))["r"]
    for _ in range(MAX_NESTING - 1):
        decoded = decoded.args[0]
    assert decoded.args == ("leaf",)
    with pytest.raises(SerializationError, match=TOO_DEEP.pattern):
        msgpack_serializer({"r": deep_exception(MAX_NESTING)})
    by_hand = msgpack.packb({"r": deep_exception_ext(MAX_NESTING)})  # one level more, bypassing the encoder
    with pytest.raises(SerializationError, match=TOO_DEEP.pattern):
        msgpack_deserializer(by_hand)
