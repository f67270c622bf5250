"""The bad-input matrix (invariant 7): each bad input gets a clear error, the worker keeps going and no
other job is lost.

Already covered elsewhere, not repeated here: bytes that are not msgpack and an unknown function
(test_api.py::test_bad_payload_and_unknown_function_fail_that_job_and_worker_goes_on), a result msgpack cannot
encode (test_api.py::test_unserializable_result_fails_the_job_with_the_reason), a negative float ``_defer_by``
and both ``_defer_*`` at once (test_api.py::test_bad_defer_arguments), a job blocking the event loop under
``--child-timeout`` (test_supervisor.py::test_stalled_child_is_dumped_killed_and_its_job_rerun), settings paths
that do not import / have no class / no functions and unknown CLI flags (test_cli.py, test_supervisor.py), and a
job killing its worker under a lone ``pool worker`` (test_crash_recovery.py).

Each test's docstring says what the worker must do with its input.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest

from pool import Job, JobStatus, PoolRedis, RedisSettings, create_pool, func
from pool.storage.codecs import deserialize_result, encode_result
from pool.storage.keys import QueueKeys
from pool.storage.serializers import DeserializationError, JobExecutionFailed, SerializationError
from tests.helpers import wait_for
from tests.redis_server import _die_with_parent
from tests.worker_utils import run_burst, running_worker

REPO = Path(__file__).resolve().parent.parent
KEYS = QueueKeys("default")


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def identity(ctx: dict[str, Any], value: Any) -> Any:
    return value


async def corrupt(redis: PoolRedis, job_id: str, payload: bytes) -> None:
    """Replace a queued job's payload, as a buggy producer or a hand edit in Redis would."""
    assert await redis.hset(KEYS.job(job_id), "d", payload) == 0


async def failure_of(redis: PoolRedis, job_id: str) -> Any:
    """The recorded failure of a job (its exception), read without raising it."""
    info = await Job(job_id, redis).result_info()
    assert info is not None, f"job {job_id} has no result"
    assert not info.success, f"job {job_id} succeeded: {info.result!r}"
    return info


# --- payloads a worker cannot use ----------------------------------------------------------------------------------


class _Touch:
    """Unpickling this creates a file: a pickle payload must never be unpickled by the default deserializer."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


WRONG_SHAPES: dict[str, Any] = {
    "empty": b"",
    "truncated": msgpack.packb({"f": "add", "a": [1, 2], "k": {}, "et": 1})[:-3],
    "a-list": msgpack.packb(["add", [1, 2], {}]),
    "an-int": msgpack.packb(42),
    "a-string": msgpack.packb("add"),
    "no-function": msgpack.packb({"a": [1, 2], "k": {}, "et": 1}),
    "function-not-str": msgpack.packb({"f": 7, "a": [1, 2], "k": {}, "et": 1}),
    "args-not-a-list": msgpack.packb({"f": "add", "a": 5, "k": {}, "et": 1}),
    "kwargs-not-a-map": msgpack.packb({"f": "add", "a": [1, 2], "k": [1], "et": 1}),
    "unknown-ext-type": msgpack.packb({"f": "add", "a": [msgpack.ExtType(99, b"??"), 1], "k": {}, "et": 1}),
    "two-objects": msgpack.packb({"f": "add", "a": [1, 2], "k": {}, "et": 1}) + msgpack.packb(1),
}


async def test_payloads_of_the_wrong_shape_fail_that_job_and_the_worker_goes_on(
    redis: PoolRedis, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each corrupted job fails on its first try with a recorded error naming the problem; a pickle payload is
    refused without being unpickled; the good jobs around them complete."""
    caplog.set_level(logging.INFO, logger="pool")
    marker = tmp_path / "unpickled"
    shapes = {**WRONG_SHAPES, "pickle": pickle.dumps(_Touch(str(marker)))}
    for name, payload in shapes.items():
        assert await redis.enqueue_job("add", 1, 1, _job_id=name) is not None
        await corrupt(redis, name, payload)
    good = [await redis.enqueue_job("add", i, 1, _job_id=f"good{i}") for i in range(3)]
    worker = await run_burst(redis_url, functions=[add], max_tries=2)

    for name in shapes:
        info = await failure_of(redis, name)
        assert info.job_try == 1, f"{name}: failed on try {info.job_try}, after being retried"
        # the ext type 99 decodes as msgpack.ExtType, which add() then cannot add: a TypeError of the job itself
        expected = TypeError if name == "unknown-ext-type" else DeserializationError
        assert isinstance(info.result, expected), f"{name}: {info.result!r}"
        if expected is DeserializationError:
            assert str(info.result).startswith("unable to deserialize job"), f"{name}: {info.result}"
    assert not marker.exists(), "the default deserializer unpickled queue data"
    assert [await job.result(timeout=1) for job in good if job] == [1, 2, 3]
    assert worker.jobs_failed == len(shapes) and worker.jobs_complete == 3


POISON: dict[str, dict[str, Any]] = {
    # int(data["et"]) raises before max_tries is checked: redelivered at once, forever (thousands of times a second)
    "enqueue-time-not-an-int": {"f": "add", "a": [1, 2], "k": {}, "et": "yesterday"},
    # ms_to_datetime(et) raises (year out of range) outside the job's try: handed back until max_tries
    "enqueue-time-out-of-range": {"f": "add", "a": [1, 2], "k": {}, "et": 10**17},
    # the INFO log line sorts kwargs.items(): int and str keys do not compare, outside the job's try
    "kwargs-with-non-str-keys": {"f": "add", "a": [1], "k": {1: 2, "b": 3}, "et": 1},
}


@pytest.mark.parametrize("shape", list(POISON))
async def test_poison_payload_fails_once_with_its_reason(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    """Expected: the job ends on its first try: failed with an error saying what is wrong with the payload (or,
    for a field the worker can do without, run), never redelivered until "max retries exceeded"."""
    caplog.set_level(logging.INFO, logger="pool")  # as `pool worker` logs: each job's start line at INFO
    assert await redis.enqueue_job("add", 1, 1, _job_id="poison") is not None
    await corrupt(redis, "poison", msgpack.packb(POISON[shape]))
    good = await redis.enqueue_job("add", 20, 22)
    assert good is not None
    async with running_worker(redis_url, functions=[add], max_tries=3):
        assert await good.result(timeout=5) == 42
        await wait_for(lambda: Job("poison", redis).result_info(), timeout=2, message="the poison job's result")
    info = await Job("poison", redis).result_info()
    assert info is not None
    assert info.job_try == 1, f"ended on try {info.job_try}: {info.result!r}"
    # a fix may reject the payload (DeserializationError) or tolerate the field; never "max retries exceeded"
    assert "retries exceeded" not in str(info.result), repr(info.result)


async def test_an_exception_in_the_queue_data_never_imports_its_module(redis: PoolRedis, redis_url: str) -> None:
    """An argument encoded as an exception of a module the worker never imported comes back as
    JobExecutionFailed("module.Name: message"): decoding queue data imports nothing."""
    module = "antigravity"  # imported for effect: it would open a web browser
    assert module not in sys.modules
    packed_args = msgpack.packb(["no!"], use_bin_type=True)
    fake = msgpack.ExtType(1, msgpack.packb([module, "Fly", packed_args, "no!"], use_bin_type=True))
    assert await redis.enqueue_job("identity", 0, _job_id="ext") is not None
    await corrupt(redis, "ext", msgpack.packb({"f": "identity", "a": [fake], "k": {}, "et": 1}, use_bin_type=True))
    await run_burst(redis_url, functions=[func(identity, name="identity")])
    result = await Job("ext", redis).result(timeout=1)
    assert isinstance(result, JobExecutionFailed) and str(result) == "antigravity.Fly: no!"
    assert module not in sys.modules


# --- calling a function wrongly -------------------------------------------------------------------------------------


async def test_wrong_argument_count_fails_that_job_with_the_type_error(redis: PoolRedis, redis_url: str) -> None:
    too_few = await redis.enqueue_job("add", 1)
    too_many = await redis.enqueue_job("add", 1, 2, 3)
    unknown_kwarg = await redis.enqueue_job("add", 1, c=2)
    good = await redis.enqueue_job("add", 1, b=2)
    assert too_few and too_many and unknown_kwarg and good
    worker = await run_burst(redis_url, functions=[add])
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'b'"):
        await too_few.result(timeout=1)
    with pytest.raises(TypeError, match="takes 3 positional arguments but 4 were given"):
        await too_many.result(timeout=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        await unknown_kwarg.result(timeout=1)
    assert await good.result(timeout=1) == 3
    assert worker.jobs_failed == 3 and worker.jobs_complete == 1


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


@pytest.mark.parametrize(
    "argument",
    [object(), 2**64, lambda: 1, int, (i for i in range(3)), _circular()],
    ids=["object", "int-over-64-bits", "lambda", "a-class", "generator", "circular-list"],
)
async def test_an_argument_msgpack_cannot_encode_is_refused_at_enqueue(redis: PoolRedis, argument: Any) -> None:
    """The caller gets SerializationError from enqueue_job; nothing reaches Redis, so the id stays free."""
    with pytest.raises(SerializationError, match='unable to serialize job "add"'):
        await redis.enqueue_job("add", argument, 1, _job_id="refused")
    assert await redis.keys("pool:*") == []
    assert await redis.enqueue_job("add", 1, 1, _job_id="refused") is not None


async def test_a_50mb_argument_is_refused_at_enqueue_with_a_configurable_limit(redis_url: str) -> None:
    """Proposed API (pool/connections.py, pool/jobs.py):

    - ``create_pool(settings, *, max_payload_bytes: int | None = 8 * 1024 * 1024, ...)``, kept on ``PoolRedis``
      (``PoolRedis.max_payload_bytes``); ``None`` lifts the limit. ``Worker(max_payload_bytes=...)`` (and the
      WorkerSettings attribute) sets it for the worker's pool, whose results are checked against it too: a result
      over the limit is recorded as the job's failure ``SerializationError("result is N bytes, over the limit …")``.
    - ``enqueue_job`` serializes, then raises ``pool.jobs.PayloadTooLarge`` (a ``SerializationError``) before
      sending anything when ``len(payload) > max_payload_bytes``, with a message naming the function, the size,
      the limit and the setting: ``job 'echo' is 52428860 bytes serialized, over the limit of 8388608 bytes
      (create_pool(max_payload_bytes=...))``.
    """
    default = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        with pytest.raises(SerializationError, match=r"job 'echo' is \d+ bytes serialized, over the limit") as info:
            await default.enqueue_job("echo", b"x" * (50 * 1024 * 1024), _job_id="big")
        assert "max_payload_bytes" in str(info.value)
        assert type(info.value).__name__ == "PayloadTooLarge"
        assert await default.keys("pool:*") == []
    finally:
        await default.aclose()
    limited = await create_pool(RedisSettings.from_dsn(redis_url), max_payload_bytes=1000)  # type: ignore[call-arg]
    try:
        with pytest.raises(SerializationError, match="over the limit of 1000 bytes"):
            await limited.enqueue_job("echo", b"x" * 2000)
        assert await limited.enqueue_job("echo", b"x" * 100) is not None
    finally:
        await limited.aclose()


# --- job ids -------------------------------------------------------------------------------------------------------

ODD_IDS = [
    "with space",
    "new\nline and\ttab\r",
    "ünïcødé ✓ 日本語 🎉",
    "{braces}",
    "}{",
    "*?[glob]\\",
    "pool:{default}:job:nested",
    "../../etc/passwd",
    "%s %d {0}",
    "nul\x00inside",
    "x" * 10_000,
]


async def test_job_ids_with_odd_characters_and_10kb_long(redis: PoolRedis, redis_url: str) -> None:
    """Each id is kept exactly (keys, Lua scripts, results, listing); uniqueness holds for each; none collide."""
    for i, job_id in enumerate(ODD_IDS):
        job = await redis.enqueue_job("add", i, 1, _job_id=job_id)
        assert job is not None and job.job_id == job_id
        assert await redis.enqueue_job("add", 0, 0, _job_id=job_id) is None, f"{job_id[:20]!r} enqueued twice"
    assert sorted(d.job_id or "" for d in await redis.queued_jobs()) == sorted(ODD_IDS)
    worker = await run_burst(redis_url, functions=[add])
    assert worker.jobs_complete == len(ODD_IDS) and worker.jobs_failed == 0
    for i, job_id in enumerate(ODD_IDS):
        job = Job(job_id, redis)
        assert await job.status() == JobStatus.complete
        assert await job.result(timeout=1) == i + 1
        assert await redis.enqueue_job("add", 0, 0, _job_id=job_id) is None, "refused while its result is kept"
    assert sorted(r.job_id or "" for r in await redis.all_job_results()) == sorted(ODD_IDS)


# --- when to run ---------------------------------------------------------------------------------------------------


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time is UTC+05:30 for the test (naive datetimes are read as local time)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_defer_until_naive_is_local_time_aware_is_exact(redis: PoolRedis, kolkata: None) -> None:
    """As in arq (``datetime.timestamp()``): an aware datetime is an exact instant in any zone; a naive one is
    local wall time. A naive UTC wall time (``datetime.utcnow()`` style) is therefore 5.5 h off here: in the
    past, so that job is due at once."""
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    due_ms = int(due.timestamp() * 1000)
    cases = {
        "aware-utc": due,
        "aware-elsewhere": due.astimezone(timezone(timedelta(hours=-7, minutes=-30))),
        "naive-local": due.astimezone().replace(tzinfo=None),
        "naive-utc-wall-time": due.replace(tzinfo=None),
    }
    for job_id, when in cases.items():
        assert await redis.enqueue_job("add", 1, 1, _job_id=job_id, _defer_until=when) is not None
    for job_id in ("aware-utc", "aware-elsewhere", "naive-local"):
        info = await Job(job_id, redis).info()
        assert info is not None and info.score == due_ms, (job_id, info)
        assert await Job(job_id, redis).status() == JobStatus.deferred
    info = await Job("naive-utc-wall-time", redis).info()
    assert info is not None and info.score == due_ms - int(5.5 * 3600 * 1000)
    assert await Job("naive-utc-wall-time", redis).status() == JobStatus.queued


async def test_a_negative_defer_by_and_a_past_defer_until_run_at_once(redis: PoolRedis, redis_url: str) -> None:
    """As in arq: a job due in the past is queued, not deferred, and runs at once (it was refused before)."""
    negative = await redis.enqueue_job("add", 1, 2, _defer_by=timedelta(seconds=-1))
    negative_float = await redis.enqueue_job("add", 1, 3, _defer_by=-2.5)
    past = await redis.enqueue_job("add", 1, 1, _defer_until=datetime.now(UTC) - timedelta(days=1))
    assert negative and negative_float and past
    for job in (negative, negative_float, past):
        assert await job.status() == JobStatus.queued
    await run_burst(redis_url, functions=[add])
    assert [await job.result(timeout=1) for job in (negative, negative_float, past)] == [3, 4, 2]


async def test_negative_expires_is_refused(redis: PoolRedis) -> None:
    """A negative ``_expires`` is the caller's mistake: refused with a ValueError naming it, nothing written."""
    with pytest.raises(ValueError, match="_expires"):
        await redis.enqueue_job("add", 1, 1, _expires=-5)
    assert await redis.keys("pool:*") == []


# --- what a job raises or returns ----------------------------------------------------------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class NeedsTwoArgs(Exception):
    def __init__(self, code: int, detail: object) -> None:
        super().__init__(code, detail)


async def raises(ctx: dict[str, Any], kind: str) -> None:
    if kind == "unprintable":
        raise Unprintable(object())
    if kind == "self-referencing":
        exc = ValueError("loop")
        exc.args = (exc,)
        raise exc
    raise NeedsTwoArgs(3, object())


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("unprintable", SerializationError, "unable to serialize exception"),
        pytest.param("self-referencing", SerializationError, "unable to serialize exception"),
        ("unencodable-args", JobExecutionFailed, "NeedsTwoArgs: (3, <object object at"),
    ],
)
async def test_an_exception_that_cannot_be_serialized_is_recorded_as_the_failure(
    redis: PoolRedis, redis_url: str, monkeypatch: pytest.MonkeyPatch, kind: str, error: type[Exception], message: str
) -> None:
    """The job fails (not retried), its result says the exception could not be kept, and the worker goes on.

    The self-referencing one (an exception among its own args) must not break the worker's own logging of it
    either: the job's failure is recorded all the same.

    pool.worker's records go only to the handlers of a real process here: pytest's capture handler raises when a
    record cannot be formatted (str() of Unprintable raises), where logging's own handlers print the error and go
    on, so under pytest the job would be handed back as an "unexpected error around the job"."""
    monkeypatch.setattr(logging.getLogger("pool.worker"), "propagate", False)
    job = await redis.enqueue_job("raises", kind)
    good = await redis.enqueue_job("add", 1, 2)
    assert job and good
    worker = await run_burst(redis_url, functions=[func(raises, name="raises"), add])
    with pytest.raises(error) as info:
        await job.result(timeout=1)
    assert message in str(info.value)
    assert await good.result(timeout=1) == 3
    assert worker.jobs_failed == 1 and worker.jobs_complete == 1


# --- a job that exits the process ----------------------------------------------------------------------------------

EXIT_APP = """
import asyncio, os, sys

from pool import func

async def exiter(ctx, how):
    await ctx["redis"].incr("runs:" + ctx["job_id"])
    if how == "sys.exit":
        sys.exit(3)
    os._exit(3)

async def ok(ctx, i):
    await asyncio.sleep(0.05)
    return i

class WorkerSettings:
    # ok() may be running beside the exiting job each time it takes its worker down: give it tries to spare
    functions = [exiter, func(ok, max_tries=10)]
    max_tries = 2
"""


def pool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL_") and k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``background(*pool_args)`` runs ``pool ...`` in tmp_path (output in pool.log); killed at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / "pool.log", "ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "pool", *args],
                cwd=tmp_path,
                env=pool_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        started.append(popen)
        return popen

    yield start
    for popen in started:
        try:
            procs = [*psutil.Process(popen.pid).children(recursive=True), psutil.Process(popen.pid)]
        except psutil.Error:
            procs = []
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        popen.wait(10)


@pytest.mark.parametrize("how", ["sys.exit", "os._exit"])
async def test_a_job_that_exits_its_process_under_pool_start(
    redis: PoolRedis, redis_url: str, tmp_path: Path, background: Callable[..., subprocess.Popen[bytes]], how: str
) -> None:
    """os._exit ends the worker process at once; the supervisor replaces it and hands its jobs back, and the job
    runs again until max_tries (2), then is recorded as failed. sys.exit is caught: that job fails on its first
    try and the worker lives on. Either way the other jobs all complete and the supervisor lives on."""
    (tmp_path / "exitapp.py").write_text(EXIT_APP)
    sup = background("start", "--procs", "2", "--pidfile", str(tmp_path / "pool.pid"), "--redis", redis_url,
                     "exitapp.WorkerSettings")  # fmt: skip
    await wait_for(
        lambda: "2 workers ready" in (tmp_path / "pool.log").read_text() or sup.poll() is not None,
        timeout=20,
        message="supervisor ready",
    )
    oks = [await redis.enqueue_job("ok", i) for i in range(30)]
    exiter = await redis.enqueue_job("exiter", how, _job_id="exiter")
    oks += [await redis.enqueue_job("ok", i) for i in range(30, 60)]
    assert exiter is not None and all(oks)
    await wait_for(lambda: Job("exiter", redis).result_info(), timeout=20, message="the exiting job's result")
    info = await failure_of(redis, "exiter")
    if how == "os._exit":  # the process is gone: each try kills a child, until max_tries
        assert isinstance(info.result, JobExecutionFailed) and "max 2 retries exceeded" in str(info.result)
        assert await redis.get("runs:exiter") == b"2"
    else:  # sys.exit is caught: that job's failure on its first try, the child lives on
        assert isinstance(info.result, JobExecutionFailed) and "SystemExit" in str(info.result)
        assert await redis.get("runs:exiter") == b"1"
    assert [await job.result(timeout=15) for job in oks if job] == list(range(60))
    assert sup.poll() is None, (tmp_path / "pool.log").read_text()[-3000:]


async def test_sys_exit_in_a_job_fails_that_job_and_the_lone_worker_goes_on(
    redis: PoolRedis, redis_url: str, tmp_path: Path, background: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """Expected: sys.exit() inside a job is that job's failure, recorded like any exception (SystemExit(3)); the
    worker keeps serving. (os._exit cannot be caught: the process is gone, its jobs are reclaimed by other
    workers after 3 heartbeats, see test_crash_recovery.py.) A job's SystemExit never reaches the event loop.
    (A KeyboardInterrupt or other BaseException a job raises is its failure too: test_poison_jobs.py.)"""
    (tmp_path / "exitapp.py").write_text(EXIT_APP)
    worker = background("worker", "exitapp.WorkerSettings", "--redis", redis_url)
    exiter = await redis.enqueue_job("exiter", "sys.exit", _job_id="exiter")
    assert exiter is not None
    await wait_for(lambda: redis.get("runs:exiter"), timeout=15, message="the job ran")
    good = await redis.enqueue_job("ok", 5)
    assert good is not None
    await wait_for(lambda: Job("exiter", redis).result_info(), timeout=3, message="the exiting job's result")
    info = await failure_of(redis, "exiter")
    assert info.job_try == 1 and "SystemExit" in repr(info.result), repr(info.result)
    assert await good.result(timeout=5) == 5
    assert worker.poll() is None, "the worker exited"


# --- settings ------------------------------------------------------------------------------------------------------

CRON_APP = """
from pool import cron

async def report(ctx):
    return 1

class WorkerSettings:
    functions = []
    cron_jobs = [cron(report, hour=25)]
"""


@pytest.mark.parametrize("command", ["worker", "start"])
def test_invalid_cron_fields_are_rejected_at_start(tmp_path: Path, redis_url: str, command: str) -> None:
    """hour=25 never fires in arq; here the settings fail to import: exit 1, one line naming the field."""
    (tmp_path / "cronapp.py").write_text(textwrap.dedent(CRON_APP))
    extra = ["--pidfile", str(tmp_path / "pool.pid")] if command == "start" else []
    proc = subprocess.run(
        [sys.executable, "-m", "pool", command, *extra, "--redis", redis_url, "cronapp.WorkerSettings"],
        cwd=tmp_path,
        env=pool_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    output = proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert len(lines) == 1, lines
    assert "cron job 'cron:report': hour=25 is out of range 0-23" in lines[0]
    assert not (tmp_path / "pool.pid").exists()


# --- a serializer that cannot encode what a job ended with ---------------------------------------------------------


async def fails_plainly(ctx: dict[str, Any]) -> None:
    raise ValueError("plain msgpack cannot encode me")


async def returns_an_object(ctx: dict[str, Any]) -> object:
    return object()


async def test_a_serializer_that_cannot_encode_the_outcome_still_fails_the_job_and_the_burst_returns(
    redis_url: str,
) -> None:
    """arq's documented ``job_serializer=msgpack.packb`` encodes neither an exception nor an arbitrary object.
    Each such job must still reach a final state: failed, its result the string 'unable to serialize result'
    (arq's), which ``Job.result()`` raises as a SerializationError; the worker goes on, a burst run returns, and
    aborting a queued job (whose record is an exception too) works with that serializer."""
    serializer = msgpack.packb
    deserializer = functools.partial(msgpack.unpackb, raw=False)
    redis = await create_pool(
        RedisSettings.from_dsn(redis_url), job_serializer=serializer, job_deserializer=deserializer
    )
    try:
        raised = await redis.enqueue_job("fails_plainly")
        returned = await redis.enqueue_job("returns_an_object")
        good = await redis.enqueue_job("add", 2, 3)
        assert raised and returned and good
        worker = await run_burst(
            redis_url,
            functions=[fails_plainly, returns_an_object, add],
            job_serializer=serializer,
            job_deserializer=deserializer,
        )
        assert (worker.jobs_failed, worker.jobs_complete) == (2, 1)
        for job in (raised, returned):
            assert await job.status() == JobStatus.complete
            with pytest.raises(SerializationError, match="unable to serialize result"):
                await job.result(timeout=1)
            info = await job.result_info()
            assert info is not None and info.success is False and info.result == "unable to serialize result"
        assert await good.result(timeout=1) == 5

        queued = await redis.enqueue_job("add", 1, 1, _defer_by=60)
        assert queued is not None
        assert await queued.abort(timeout=1) is True
        assert await queued.status() == JobStatus.complete
    finally:
        await redis.aclose()


def test_a_result_no_serializer_attempt_can_encode_is_still_written() -> None:
    """A serializer that refuses everything (even arq's fallback string): the record is written with pool's
    msgpack, marked as not kept, rather than raising out of the worker and leaving the job running."""

    def refuses(data: dict[str, Any]) -> bytes:
        raise TypeError("nothing today")

    payload, kept = encode_result(
        function="f",
        args=(1,),
        kwargs={},
        attempts=1,
        enqueue_ms=1,
        success=True,
        result=2,
        start_ms=1,
        finish_ms=2,
        queue_name="default",
        job_id="j",
        serializer=refuses,
    )
    assert kept is False
    record = deserialize_result(payload, None)
    assert (record.success, record.result, record.job_id) == (False, "unable to serialize result", "j")
