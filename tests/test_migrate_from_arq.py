"""``pool migrate-from-arq``: jobs real arq enqueued move into pool's queue and pool's worker runs each once.

arq 0.26.3 runs in its own venv (``make arq-client``, which ``make test`` builds: arq pins redis-py < 6) and fills
its queue through tests/arq_client/produce.py, run as a subprocess. pool's side (the functions the jobs name) is
tests/apps/arq_jobs.py: each run appends its id, try and arguments to the list ``ran``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from pool import RedisSettings, create_pool
from pool.client.arq_migration import CLAIM, PAUSE_ENV
from pool.jobs import Job, JobStatus
from tests.helpers import wait_for_sync
from tests.test_cli import REPO_ROOT, assert_one_line_error, pool_env, run_pool

SETTINGS = "tests.apps.arq_jobs.WorkerSettings"
STAY = ("complex", "custom_id", "unknown", "aborted")  # the jobs of produce's "mixed" that stay in arq's queue
ARQ_PYTHON = Path(os.environ.get("POOL_TEST_ARQ_PYTHON") or REPO_ROOT / ".venv-arq-client" / "bin" / "python")

pytestmark = pytest.mark.skipif(
    not ARQ_PYTHON.exists(), reason=f"arq 0.26.3's venv is missing ({ARQ_PYTHON}): run `make arq-client`"
)


def produce(url: str, *action: str) -> dict[str, Any]:
    """Real arq enqueues jobs (tests/arq_client/produce.py); returns what it enqueued."""
    proc = subprocess.run(
        [str(ARQ_PYTHON), "-m", "tests.arq_client.produce", url, *action],
        cwd=REPO_ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def migrate(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_pool("migrate-from-arq", SETTINGS, "--redis", url, *extra, cwd=REPO_ROOT, timeout=60)


def run_burst_worker(url: str) -> None:
    proc = run_pool("worker", SETTINGS, "--redis", url, "--burst", cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def runs(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(entry) for entry in client.lrange("ran", 0, -1)]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def snapshot(client: redis.Redis) -> dict[bytes, tuple[bytes | None, bool]]:
    """Every key, its value (DUMP) and whether it expires."""
    return {key: (client.dump(key), client.pttl(key) > 0) for key in client.keys("*")}


async def test_arq_jobs_move_into_pool_and_run_there_with_their_ids_arguments_due_times_and_tries(
    redis_url: str, client: redis.Redis
) -> None:
    jobs = produce(redis_url, "mixed")
    client.set("arq:in-progress:custom-id", b"1", px=60_000)  # what arq's worker writes while it runs a job
    assert int(client.get("arq:retry:retried-job") or 0) == 1  # arq's worker tried it once (Retry)

    proc = migrate(redis_url, "--serializer", "pickle")

    assert proc.returncode == 1, proc.stdout + proc.stderr  # two jobs could not move
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "left running in arq: custom-id" in proc.stdout
    assert "not moved: complex-arg: cannot re-encode" in proc.stdout
    assert "not moved: unknown-function: pool's settings have no function 'not_in_pool'" in proc.stdout
    assert "left in arq: aborted-job (arq was asked to abort it" in proc.stdout
    assert proc.stdout.splitlines()[-1] == (
        "moved 4 jobs from arq's 'arq:queue' to pool's 'default' (2 deferred); left running in arq: 1; "
        "aborted, left to arq: 1; failed (left in arq, each said above): 2"
    )
    # what stays in arq, untouched: the running job (still arq's), the one pool cannot carry, the unknown function,
    # the aborted one
    assert sorted(client.zrange("arq:queue", 0, -1)) == [
        b"aborted-job",
        b"complex-arg",
        b"custom-id",
        b"unknown-function",
    ]
    assert client.get("arq:in-progress:custom-id") == b"1"
    released = ("arq:in-progress:complex-arg", "arq:in-progress:unknown-function", "arq:in-progress:aborted-job")
    assert not client.exists(*released)
    moved = [job["id"] for label, job in jobs.items() if label not in STAY]
    assert not any(client.exists(f"arq:job:{i}", f"arq:retry:{i}", f"arq:in-progress:{i}") for i in moved)
    assert client.exists("arq:job:complex-arg", "arq:job:custom-id", "arq:job:unknown-function") == 3

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        for label in ("deferred", "retried"):  # deferred in arq (a retry's delay too): deferred in pool, same due time
            job = Job(jobs[label]["id"], pool)
            assert await job.status() == JobStatus.deferred
            info = await job.info()
            assert info is not None and info.score == jobs[label]["score"]
    finally:
        await pool.aclose()

    run_burst_worker(redis_url)

    ran = {run["id"]: run for run in runs(client)}
    assert len(runs(client)) == len(moved) == len(ran)
    for label, job in jobs.items():
        if label in STAY:
            assert job["id"] not in ran
            continue
        assert (ran[job["id"]]["args"], ran[job["id"]]["kwargs"]) == (job["args"], job["kwargs"])
        assert ran[job["id"]]["try"] == (2 if label == "retried" else 1)  # the try arq used is counted


def test_pickled_arq_jobs_are_read_only_with_serializer_pickle(redis_url: str, client: redis.Redis) -> None:
    produce(redis_url, "many", "3")
    before = snapshot(client)

    proc = migrate(redis_url)

    assert_one_line_error(proc, 2, "pickled", "--serializer pickle", "runs whatever code")
    assert snapshot(client) == before


def test_dry_run_reports_what_would_move_and_changes_nothing(redis_url: str, client: redis.Redis) -> None:
    produce(redis_url, "mixed")
    before = snapshot(client)

    proc = migrate(redis_url, "--serializer", "pickle", "--dry-run")

    assert proc.returncode == 1, proc.stdout + proc.stderr  # the complex argument would fail
    assert "would move 5 jobs" in proc.stdout and "(dry run: nothing changed)" in proc.stdout
    assert "would move: custom-id" in proc.stdout
    assert snapshot(client) == before


def test_a_migration_killed_half_way_then_run_again_moves_every_job_exactly_once(
    redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    produce(redis_url, "many", "20")
    log = tmp_path / "migrate.log"
    with open(log, "wb") as out:
        # paused after its 7th enqueue into pool, before that job leaves arq: the worst moment to die
        first = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pool",
                "migrate-from-arq",
                SETTINGS,
                "--redis",
                redis_url,
                "--serializer",
                "pickle",
            ],
            cwd=REPO_ROOT,
            env=pool_env(**{PAUSE_ENV: "7"}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_sync(lambda: b"paused after 7 jobs" in log.read_bytes(), timeout=30, message="the pause")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert client.zcard("arq:queue") == 14  # six moved; the seventh is in both queues, claimed in arq
    (claimed,) = client.keys("arq:in-progress:*")
    assert client.get(claimed) == CLAIM
    assert client.exists(b"pool:{default}:job:" + claimed.removeprefix(b"arq:in-progress:"))

    proc = migrate(redis_url, "--serializer", "pickle")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("moved 14 jobs")
    assert client.zcard("arq:queue") == 0
    assert not client.keys("arq:*")
    run_burst_worker(redis_url)
    assert sorted(run["id"] for run in runs(client)) == sorted(f"job-{i}" for i in range(20))


@pytest.mark.parametrize(
    ("serializer", "fragment"),
    [("yaml", "expected pickle, msgpack or a dotted path"), ("no_such_module.loads", "cannot import")],
)
def test_an_unknown_serializer_is_a_usage_error(redis_url: str, serializer: str, fragment: str) -> None:
    assert_one_line_error(migrate(redis_url, "--serializer", serializer), 2, "--serializer", fragment)


def test_a_wrong_password_is_one_line_without_the_password(redis_server_factory: Callable[..., Any]) -> None:
    server = redis_server_factory(password="right-pw")
    url = server.url.replace("right-pw", "s3cret-pw")
    assert "s3cret-pw" in url
    proc = migrate(url, "--serializer", "pickle")
    assert_one_line_error(proc, 1)
    assert "s3cret-pw" not in proc.stdout + proc.stderr


async def test_an_arq_job_whose_id_pool_already_holds_for_another_job_stays_in_arq(
    redis_url: str, client: redis.Redis
) -> None:
    produce(redis_url, "many", "3")
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        assert await pool.enqueue_job("record", "pool's own", _job_id="job-1") is not None
    finally:
        await pool.aclose()

    proc = migrate(redis_url, "--serializer", "pickle")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not moved: job-1: pool's queue already holds a job with this id" in proc.stdout
    assert client.zrange("arq:queue", 0, -1) == [b"job-1"]
    assert not client.exists("arq:in-progress:job-1")  # released: arq may still run it
    run_burst_worker(redis_url)
    assert sorted((run["id"], run["args"]) for run in runs(client)) == [
        ("job-0", "[0]"),
        ("job-1", '["pool\'s own"]'),
        ("job-2", "[2]"),
    ]


def test_a_job_claimed_by_an_interrupted_run_stays_claimed_when_the_rerun_cannot_read_it(
    redis_url: str, client: redis.Redis
) -> None:
    """The interrupted run may have enqueued it into pool already: released, arq could run it a second time."""
    produce(redis_url, "many", "2")
    client.set("arq:in-progress:job-0", CLAIM)  # as a run killed between its claim and its removal leaves it

    proc = migrate(redis_url, "--serializer", "json.loads")  # cannot read arq's pickles

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not moved: job-0: cannot decode" in proc.stdout and "kept so" in proc.stdout
    assert client.get("arq:in-progress:job-0") == CLAIM
    assert not client.exists("arq:in-progress:job-1")  # claimed by this run only: released
    assert sorted(client.zrange("arq:queue", 0, -1)) == [b"job-0", b"job-1"]


async def test_a_job_whose_id_pool_holds_is_never_claimed_so_no_kill_can_drop_it(
    redis_url: str, client: redis.Redis
) -> None:
    """Were it claimed, then released once pool refused the id, a run killed between the two would leave the
    claim, and the re-run would take pool's other job for its own enqueue and drop arq's. The claim (SET of
    arq:in-progress) must never happen: watched through keyspace notifications."""
    produce(redis_url, "many", "2")
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        assert await pool.enqueue_job("record", "pool's own", _job_id="job-0") is not None
    finally:
        await pool.aclose()
    before = client.config_get("notify-keyspace-events")["notify-keyspace-events"]
    client.config_set("notify-keyspace-events", "K$g")
    watch = client.pubsub()
    try:
        watch.subscribe("__keyspace@0__:arq:in-progress:job-0", "__keyspace@0__:arq:in-progress:job-1")
        proc = migrate(redis_url, "--serializer", "pickle")
        events: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 10
        while (b"job-1", b"del") not in events and time.monotonic() < deadline:  # job-1's move is the last one
            message = watch.get_message(timeout=0.2)
            if message is not None and message["type"] == "message":
                events.append((message["channel"].rsplit(b":", 1)[1], message["data"]))
    finally:
        watch.close()
        client.config_set("notify-keyspace-events", before)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not moved: job-0: pool's queue already holds a job with this id" in proc.stdout, proc.stdout
    assert (b"job-1", b"set") in events  # the watch works: job-1 was claimed, then moved
    assert not [event for event in events if event[0] == b"job-0"], events
    assert client.zrange("arq:queue", 0, -1) == [b"job-0"] and client.exists("arq:job:job-0")
