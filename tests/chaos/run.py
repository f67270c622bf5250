"""The chaos run: ``pool start`` under kill -9, reload, scaling and a Redis restart loses no job.

    python -m tests.chaos.run [--jobs N] [--seconds S] [--procs P] [--quick]
                              [--appendfsync always|everysec] [--redis-kill] [--deadline S] [--keep] [--seed N]
    make chaos                          # the full run: 20,000 jobs
    make chaos CHAOS_ARGS=--quick       # 2,000 jobs, under 3 minutes (CI; tests/test_chaos_quick.py runs it)

What it does:

1. starts a private redis-server with the AOF on (``appendfsync always`` unless ``--appendfsync everysec``) and
   ``pool start --procs P tests.chaos.WorkerSettings`` (tests/chaos/app.py) against it;
2. enqueues the jobs: 40 % at once, 30 % deferred over the chaos window, 30 % trickled in during it (the
   trickle keeps enqueueing through the Redis restart, retrying on connection errors, so its ids are explicit).
   Job ``i`` is ``work(i, kind, ms)``: ``kind`` is ``retry`` (raises Retry once) when i % 20 == 7, ``fail``
   (fails for good) when i % 25 == 11, else ``ok``; ``ms`` is 0-200. Poison jobs: ``interrupt`` (raises
   KeyboardInterrupt) when i % 250 == 53, and ``deep`` when i % 250 == 153: a deferred bulk job whose payload is
   then replaced with one nested too deep to decode (tests/chaos/app.py ``deep_payload``). Each must end failed
   with its reason (``deep`` never runs), and the workers must live on. A third of the bulk jobs have an explicit
   unique ``_job_id`` that is enqueued a second time (which must be refused); the other bulk jobs get ids
   from ``enqueue_job``. The run keeps every job id, so the checker knows what each job must end as;
3. for ``--seconds S``: kill -9 a random child of the supervisor every second; at 15 % of S ``pool reload``
   (SIGHUP), at 25 % SIGTTIN, at 35 % SIGTTOU, at 50 % a restart of redis-server (SHUTDOWN, 1 s down, start
   again on the same port and AOF file; ``--redis-kill`` kills it -9 instead; it waits up to 35 s for a live
   worker first, so the restart happens under load), at 75 % (and at least 5 s after Redis is back) kill -9
   the supervisor and run a new ``pool start``; the cron job ``tick`` runs every second throughout. (The Redis
   restart comes first and the supervisor that leads cron through it keeps leading for a few ticks: a new
   leader resumes from the last tick enqueued, which would catch a dropped tick up and hide it.) At 62 % another
   client runs a Lua script that keeps Redis busy for ``--busy-ms`` (2.5 s): with ``lua-time-limit`` at 100 ms
   for the run, every other command meets BUSY meanwhile (workers' result writes, requeues, heartbeats, enqueues).
4. waits (up to ``--deadline``) until every job has a result, stops the supervisor (``pool stop``) and checks:
   - every job has its final result as designed (``ok``/``retry`` complete with their index, ``fail`` failed
     with DesignedFailure, poison jobs failed with their reason: ``poison`` counts those that did),
     ``lost=0`` (no result and no trace in Redis) and nothing left unfinished;
   - unique ids: every second enqueue of an explicit ``_job_id`` was refused;
   - no attempt ran beyond ``max_tries`` (``max_try`` is the highest ``job_try`` any job started with);
   - no job ran twice with the same ``job_try`` (two deliveries of one attempt: the job is duplicated);
   - every side effect has its execution record, and a completed job has at least one;
   - the cron job ran for every second of the run, each tick enqueued once;
   - the queue is empty at the end (no stray ready, running or deferred job);
   - no worker gave up recording a job's outcome ("could not record its outcome; it will run again": a job run
     twice without any process killed, what a BUSY reply not retried did).
   ``duplicate_runs`` counts executions beyond the designed ones (1 per job, 2 for ``retry``): the price of
   at-least-once when a process is killed between a job's side effect and the write of its result. They are
   reported, not failed: that is the contract. ``replayed`` counts side effects applied twice by one attempt
   because redis-py re-sent a MULTI/EXEC whose reply the Redis restart cut off (the job's own Redis client).

The last line printed is the summary::

    jobs=20000 complete=… failed=… lost=0 duplicate_runs=… max_try=… elapsed=…s [more fields]

and the exit status is 1 if anything was lost, left unfinished or failed a check.

Which ``appendfsync`` the no-loss guarantee needs: ``always``. The chaos run restarts Redis with SHUTDOWN, which
writes and fsyncs the AOF whatever the policy, so this run passes with ``everysec`` too. But the guarantee is
about a Redis that *crashes* as well: pool treats a write Redis acknowledged (an enqueue, a result, an ack) as
done. With ``everysec`` Redis acknowledges writes that are fsynced up to a second later (up to two when a slow
fsync makes it postpone the write), so a host crash or power loss, and even a redis-server crash while a write
is postponed, drops writes that were already acknowledged: an enqueued job vanishes (lost), a recorded result
vanishes (the job runs again). With ``always`` every write is fsynced before its reply is sent, so nothing
acknowledged is ever dropped (``--redis-kill`` exercises the crash path of the process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from redis.exceptions import RedisError

from pool import PoolRedis, RedisSettings, create_pool
from pool.jobs import deserialize_result
from pool.storage.keys import QueueKeys
from pool.storage.serializers import JobExecutionFailed, SerializationError
from pool.utils import now_ms
from tests.chaos import app
from tests.helpers import BUSY_SCRIPT, wait_for
from tests.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[2]
SETTINGS = "tests.chaos.app.WorkerSettings"
KEYS = QueueKeys("default")
CHUNK = 500
POISON = {53: "interrupt", 153: "deep"}  # i % 250 -> the kind of poison job i is
BUSY_REPLY_THRESHOLD_MS = 100


# --- the plan: which jobs, and what each must end as -------------------------------------------------------------


@dataclass
class JobPlan:
    index: int
    kind: str  # ok | retry | fail, or a poison job: interrupt | deep
    ms: int
    phase: str  # bulk | trickle
    defer_s: float = 0.0  # bulk jobs: deferred by this much
    at_s: float = 0.0  # trickle jobs: enqueued this long after the chaos starts
    explicit_id: str | None = None
    job_id: str | None = None  # known once enqueued

    @property
    def expected_executions(self) -> int:
        return {"retry": 2, "deep": 0}.get(self.kind, 1)


def make_plan(jobs: int, seconds: float, seed: int) -> list[JobPlan]:
    rng = random.Random(seed)
    plan = []
    for i in range(jobs):
        kind = "retry" if i % 20 == 7 else "fail" if i % 25 == 11 else POISON.get(i % 250, "ok")
        job = JobPlan(i, kind, rng.randint(0, 200), "bulk")
        roll = rng.random()
        if kind == "deep":  # deferred, so that its payload is replaced before any worker can take it
            job.defer_s = round(rng.uniform(1.0, max(1.0, 0.9 * seconds)), 3)
        elif roll < 0.4:
            pass
        elif roll < 0.7:
            job.defer_s = round(rng.uniform(0.5, 0.9 * seconds), 3)
        else:
            job.phase, job.at_s = "trickle", rng.uniform(0, 0.9 * seconds)
            job.explicit_id = f"t{i}"
        if job.phase == "bulk" and i % 3 == 0:
            job.explicit_id = f"u{i}"
        plan.append(job)
    return plan


# --- processes -------------------------------------------------------------------------------------------------------


def pool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL_") and k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Supervisor:
    """A ``pool start`` subprocess with its own log file; the pidfile is shared by every supervisor of the run."""

    def __init__(self, workdir: Path, name: str, redis_url: str, procs: int) -> None:
        self.name = name
        self.workdir = workdir
        self.pidfile = workdir / "pool.pid"
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [
                    *(sys.executable, "-m", "pool", "start", "--procs", str(procs)),
                    *("--pidfile", str(self.pidfile), "--redis", redis_url, SETTINGS),
                ],
                cwd=workdir,
                env=pool_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.pid).children()
        except psutil.Error:
            return []
        alive = []
        for child in found:
            with contextlib.suppress(psutil.Error):
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(child)
        return alive

    async def wait_ready(self, timeout: float) -> None:
        await wait_for(
            lambda: re.search(r" workers? ready", self.log()) or self.popen.poll() is not None,
            timeout=timeout,
            interval=0.05,
            message=f"supervisor {self.name} ready",
        )
        if self.popen.poll() is not None:
            raise RuntimeError(f"supervisor {self.name} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")


def kill_tree(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
            proc.kill()


# --- the run ---------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    server: RedisServer
    workdir: Path
    plan: list[JobPlan]
    started: float = field(default_factory=time.monotonic)
    sups: list[Supervisor] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)  # children of a killed supervisor
    problems: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    unique_refused: int = 0
    unique_accepted_twice: int = 0
    redis_back_at: float = 0.0  # loop time
    stopped_wall: float = 0.0

    @property
    def sup(self) -> Supervisor:
        return self.sups[-1]

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", flush=True)

    def start_supervisor(self) -> Supervisor:
        sup = Supervisor(self.workdir, f"sup{len(self.sups) + 1}", self.server.url, self.args.procs)
        self.sups.append(sup)
        return sup

    # --- enqueueing ---

    async def enqueue_bulk(self, client: PoolRedis) -> None:
        bulk = [job for job in self.plan if job.phase == "bulk"]

        async def one(job: JobPlan) -> None:
            handle = await client.enqueue_job(
                "work", job.index, job.kind, job.ms, _job_id=job.explicit_id, _defer_by=job.defer_s or None
            )
            if handle is None:
                self.problems.append(f"bulk job {job.index} ({job.explicit_id}) was refused")
                return
            job.job_id = handle.job_id
            if job.kind == "deep":  # still deferred (by 1 s or more): no worker has read its payload yet
                await client.hset(KEYS.job(job.job_id), "d", app.deep_payload(job.index, now_ms()))
            if job.explicit_id is not None:
                again = await client.enqueue_job("work", job.index, job.kind, job.ms, _job_id=job.explicit_id)
                if again is None:
                    self.unique_refused += 1
                else:
                    self.unique_accepted_twice += 1

        for start in range(0, len(bulk), CHUNK):
            await asyncio.gather(*(one(job) for job in bulk[start : start + CHUNK]))

    async def trickle(self, client: PoolRedis, t0: float) -> None:
        loop = asyncio.get_running_loop()
        for job in sorted((j for j in self.plan if j.phase == "trickle"), key=lambda j: j.at_s):
            delay = t0 + job.at_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the trickle's schedule
            while True:
                try:
                    await client.enqueue_job("work", job.index, job.kind, job.ms, _job_id=job.explicit_id)
                    # None: redis-py re-sent an ENQUEUE whose reply was lost; it is in (ENQUEUE refuses only
                    # an id whose job or result exists)
                    job.job_id = job.explicit_id
                    break
                except (RedisError, OSError):
                    await asyncio.sleep(0.1)  # Redis is restarting: retry

    # --- chaos ---

    async def kill_children(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(self.args.seed + 1)
        every = self.args.kill_every
        while loop.time() + every < until:
            await asyncio.sleep(every)  # the chaos cadence: one kill a second
            children = self.sup.children()
            if not children:
                self.events["no_child_to_kill"] += 1
            else:
                victim = rng.choice(children)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim.pid, signal.SIGKILL)
                    self.events["child_kills"] += 1

    async def scheduled_events(self, t0: float, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        schedule = [
            (0.15, self.reload),
            (0.25, self.ttin),
            (0.35, self.ttou),
            (0.50, self.restart_redis),
            (0.62, self.busy_redis),
            (0.75, self.replace_supervisor),
        ]
        for share, action in schedule:
            delay = t0 + share * seconds - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the event's place in the schedule
            await action()

    async def reload(self) -> None:
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pool", "reload", "--pidfile", str(self.sup.pidfile)],
            cwd=self.workdir,
            env=pool_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.say(f"pool reload -> exit {proc.returncode} {proc.stdout.strip()} {proc.stderr.strip()}")
        if proc.returncode != 0:
            self.problems.append(f"pool reload failed: {proc.stderr.strip()}")
        self.events["reload"] += 1

    async def ttin(self) -> None:
        os.kill(self.sup.pid, signal.SIGTTIN)
        self.say("SIGTTIN")
        self.events["ttin"] += 1

    async def ttou(self) -> None:
        os.kill(self.sup.pid, signal.SIGTTOU)
        self.say("SIGTTOU")
        self.events["ttou"] += 1

    async def restart_redis(self) -> None:
        how = "kill -9" if self.args.redis_kill else "SHUTDOWN"
        # under load: with workers alive (the supervisor may be backing off after the kills)
        with contextlib.suppress(AssertionError):
            await wait_for(lambda: self.sup.children(), timeout=35, interval=0.1, message="a live worker")
        self.say(f"redis-server {how} ({len(self.sup.children())} workers alive)")
        await asyncio.to_thread(self.server.kill if self.args.redis_kill else self.server.stop)
        await asyncio.sleep(self.args.redis_down)  # the length of the outage
        await asyncio.to_thread(self.server.start)
        self.redis_back_at = asyncio.get_running_loop().time()
        self.say(f"redis-server back on port {self.server.port} (AOF replayed)")
        self.events["redis_restart"] += 1

    async def busy_redis(self) -> None:
        """Another client's slow script: Redis answers BUSY to everyone else until it ends."""
        client = await create_pool(RedisSettings.from_dsn(self.server.url))
        try:
            self.say(f"a Lua script keeps Redis busy for {self.args.busy_ms} ms")
            await client.eval(BUSY_SCRIPT, 0, self.args.busy_ms)
            self.say("the busy script ended")
            self.events["busy_script"] += 1
        except (RedisError, OSError) as exc:
            self.problems.append(f"the busy script failed: {exc}")
        finally:
            await client.aclose()

    async def replace_supervisor(self) -> None:
        # the supervisor that led cron through the Redis restart keeps leading for a few ticks after it: a new
        # leader would resume from the fence and could enqueue a tick the old one dropped
        loop = asyncio.get_running_loop()
        if self.redis_back_at and loop.time() < self.redis_back_at + 5:
            await asyncio.sleep(self.redis_back_at + 5 - loop.time())
        old = self.sup
        self.orphans += [c.pid for c in old.children()]
        os.kill(old.pid, signal.SIGKILL)
        await asyncio.to_thread(old.popen.wait, 10)
        self.say(f"kill -9 supervisor {old.pid}; starting a new pool start")
        new = self.start_supervisor()
        await new.wait_ready(60)
        self.say(f"supervisor {new.pid} ready")
        self.events["supervisor_kill"] += 1

    async def watch_supervisor(self) -> None:
        """A supervisor that exits on its own is a failure; start another so the run can still be checked."""
        while True:
            await asyncio.sleep(0.5)  # poll interval
            sup = self.sup
            code = sup.popen.poll()
            if code is not None and sup is self.sup and not self.stopped_wall:
                # replace_supervisor kills it on purpose and swaps self.sup before this can see it
                await asyncio.sleep(0.2)
                if sup is not self.sup:
                    continue
                self.problems.append(f"supervisor {sup.name} exited on its own with {code} (see {sup.log_path})")
                self.say(f"supervisor {sup.pid} exited with {code}: starting another")
                new = self.start_supervisor()
                with contextlib.suppress(AssertionError, RuntimeError):
                    await new.wait_ready(60)

    async def progress(self, client: PoolRedis) -> None:
        while True:
            await asyncio.sleep(5.0)  # report interval
            try:
                counts = await client._queue(None).counts()
                done = await count_done(client, [j.job_id for j in self.plan if j.job_id])
            except (RedisError, OSError) as exc:
                self.say(f"progress: redis error ({exc})")
                continue
            self.say(
                f"done {done}/{len(self.plan)} ready={counts['ready']} running={counts['running']} "
                f"deferred={counts['deferred']} supervisor={self.sup.pid} children={len(self.sup.children())}"
            )

    async def wait_all_done(self, client: PoolRedis, deadline: float) -> set[str]:
        """Job ids still without a result when every job finished or the deadline passed."""
        loop = asyncio.get_running_loop()
        pending = {j.job_id for j in self.plan if j.job_id}
        while pending and loop.time() < deadline:
            with contextlib.suppress(RedisError, OSError):
                pending = await without_result(client, sorted(pending))
            if pending:
                await asyncio.sleep(0.5)  # poll interval, bounded by the deadline
        return pending

    async def wait_cron_caught_up(self, client: PoolRedis, deadline: float) -> bool:
        """Wait until the cron tick of two seconds ago has run: after the supervisor kill, the new supervisor
        takes the cron lock only once the dead leader's lock expired (TTL 5 s, tried every ~1.7 s), then
        catches up the ticks in between. Stopping before that would cut the run short, not find a bug."""
        loop = asyncio.get_running_loop()
        prefix = f"{app.CRON_NAME}:"
        while loop.time() < deadline:
            wanted_s = int(time.time()) - 2
            with contextlib.suppress(RedisError, OSError):
                job_ids = [item.decode().split(" ")[0] for item in await client.lrange(app.EXECS, -50, -1)]
                ticks_s = [int(i[len(prefix) :]) // 1000 for i in job_ids if i.startswith(prefix)]
                if ticks_s and max(ticks_s) >= wanted_s:
                    return True
            await asyncio.sleep(0.25)  # poll interval, bounded by the deadline
        return False

    async def stop_supervisor(self) -> None:
        self.stopped_wall = time.time()
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pool", "stop", "--timeout", "20", "--pidfile", str(self.sup.pidfile)],
            cwd=self.workdir,
            env=pool_env(),
            capture_output=True,
            text=True,
            timeout=40,
        )
        self.say(f"pool stop -> exit {proc.returncode} {proc.stdout.strip()} {proc.stderr.strip()}")
        for sup in self.sups:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(sup.popen.wait, 10)
        if self.sup.popen.returncode not in (0, None):
            self.problems.append(f"the last supervisor exited with {self.sup.popen.returncode}")

        def orphans_gone() -> bool:
            return not any(psutil.pid_exists(pid) and _alive(pid) for pid in self.orphans)

        try:
            await wait_for(orphans_gone, timeout=15, interval=0.1, message="the killed supervisor's children exit")
        except AssertionError as exc:
            self.problems.append(str(exc))

    def cleanup(self) -> None:
        kill_tree([sup.pid for sup in self.sups if sup.popen.poll() is None] + self.orphans)
        for sup in self.sups:
            with contextlib.suppress(subprocess.TimeoutExpired):
                sup.popen.wait(5)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def without_result(client: PoolRedis, job_ids: list[str]) -> set[str]:
    missing: set[str] = set()
    for start in range(0, len(job_ids), 2000):
        chunk = job_ids[start : start + 2000]
        async with client.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.exists(KEYS.result(job_id))
            found = await pipe.execute()
        missing.update(job_id for job_id, exists in zip(chunk, found, strict=True) if not exists)
    return missing


async def count_done(client: PoolRedis, job_ids: list[str]) -> int:
    return len(job_ids) - len(await without_result(client, job_ids))


# --- the checks -------------------------------------------------------------------------------------------------------


def poisoned_as_designed(job: JobPlan, error: Any) -> bool:
    """A poison job's failure says why: the KeyboardInterrupt it raised, or the nesting its payload exceeded."""
    if job.kind == "interrupt":
        return isinstance(error, JobExecutionFailed) and f"KeyboardInterrupt: poison {job.index}" in str(error)
    return isinstance(error, SerializationError) and "nested more than" in str(error)


def parse_records(raw: list[bytes]) -> dict[str, list[tuple[int, str]]]:
    """``"<job_id> <try> <nonce>"`` records -> job_id -> [(try, nonce)], a nonce seen twice kept once."""
    seen: set[bytes] = set()
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for item in raw:
        if item in seen:
            continue
        seen.add(item)
        job_id, job_try, nonce = item.decode().rsplit(" ", 2)
        out[job_id].append((int(job_try), nonce))
    return out


async def check(run: Run, client: PoolRedis, elapsed_until_done: float) -> tuple[dict[str, Any], list[str]]:
    plan, problems = run.plan, list(run.problems)
    ids = [j.job_id for j in plan if j.job_id]
    if len(ids) != len(plan):
        problems.append(f"{len(plan) - len(ids)} jobs were never enqueued")
    results: dict[str, Any] = {}
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        payloads: list[Any] = await client.mget([KEYS.result(i) for i in chunk])
        for job_id, payload in zip(chunk, payloads, strict=True):
            if payload is not None:
                results[job_id] = deserialize_result(payload, None)
    raw_starts: list[Any] = await client.lrange(app.STARTS, 0, -1)
    raw_execs: list[Any] = await client.lrange(app.EXECS, 0, -1)
    starts, execs = parse_records(raw_starts), parse_records(raw_execs)
    raw_effects: dict[Any, Any] = await client.hgetall(app.EFFECTS)
    effects = {k.decode(): int(v) for k, v in raw_effects.items()}

    complete = failed = lost = unfinished = wrong = poison = 0
    duplicate_runs = 0
    examples: dict[str, list[str]] = defaultdict(list)
    for job in plan:
        if job.job_id is None:
            continue
        result = results.get(job.job_id)
        if result is None:
            if await client.exists(KEYS.job(job.job_id)):
                unfinished += 1
                examples["unfinished"].append(job.job_id)
            else:
                lost += 1
                examples["lost"].append(job.job_id)
            continue
        if result.success:
            complete += 1
        else:
            failed += 1
        if job.kind in ("ok", "retry"):
            as_designed = result.success and result.result == job.index
        elif job.kind in POISON.values():
            as_designed = not result.success and poisoned_as_designed(job, result.result)
            poison += as_designed
        else:
            as_designed = (
                not result.success
                and isinstance(result.result, app.DesignedFailure)
                and str(result.result) == f"designed failure {job.index}"
            )
        if not as_designed:
            wrong += 1
            examples["not as designed"].append(f"{job.job_id} ({job.kind}): {result.success} {result.result!r}")
        runs = len(execs.get(job.job_id, []))
        if runs == 0 and job.expected_executions:
            wrong += 1
            examples["finished without its side effect"].append(job.job_id)
        duplicate_runs += max(runs - job.expected_executions, 0)

    # every attempt: within max_tries, and no attempt delivered twice
    max_try = max((t for records in starts.values() for t, _ in records), default=0)
    over_max = [job_id for job_id, records in starts.items() if any(t > app.MAX_TRIES for t, _ in records)]
    same_try = [job_id for job_id, records in starts.items() if len({t for t, _ in records}) != len(records)]
    # a MULTI/EXEC re-sent by redis-py applies the side effect twice under one nonce; never the other way round
    replayed = sum(count - len(execs.get(job_id, [])) for job_id, count in effects.items())
    if over_max:
        problems.append(f"{len(over_max)} jobs started more than max_tries={app.MAX_TRIES} times: {over_max[:5]}")
    if same_try:
        problems.append(f"{len(same_try)} jobs ran twice with the same job_try: {same_try[:5]}")
    if replayed < 0:
        problems.append(f"{-replayed} execution records have no side effect")

    # cron: one tick a second from the first one run until shortly before the stop
    tick_runs = {
        int(job_id.split(":")[1]) // 1000: records
        for job_id, records in execs.items()
        if job_id.startswith(f"{app.CRON_NAME}:")
    }
    cron_missed: list[int] = []
    cron_ticks = 0
    if tick_runs:
        first, last = min(tick_runs), int(run.stopped_wall) - 3
        window = range(first, last + 1)
        cron_ticks = len(window)
        cron_missed = [s for s in window if s not in tick_runs]
    else:
        problems.append("the cron job never ran")
    cron_extra = sum(len(records) - 1 for records in tick_runs.values())
    if cron_missed:
        problems.append(f"{len(cron_missed)} cron ticks did not run: {cron_missed[:10]}")

    # nothing left in the queue but cron ticks enqueued as the supervisor stopped
    stream_ids = await client._queue(None).job_ids_in_stream()
    deferred_ids = [job_id for job_id, _ in await client._queue(None).deferred_ids()]
    stray = [i for i in stream_ids + deferred_ids if not i.startswith(f"{app.CRON_NAME}:")]
    if stray:
        problems.append(f"{len(stray)} jobs left in the queue after the run: {stray[:5]}")

    if lost:
        problems.append(f"{lost} jobs lost: {examples['lost'][:5]}")
    if unfinished:
        problems.append(f"{unfinished} jobs unfinished at the deadline: {examples['unfinished'][:5]}")
    for what in ("not as designed", "finished without its side effect"):
        if examples[what]:
            problems.append(f"{len(examples[what])} jobs {what}: {examples[what][:5]}")
    if run.unique_accepted_twice:
        problems.append(f"{run.unique_accepted_twice} explicit job ids were enqueued twice")

    stats = {
        "jobs": len(plan),
        "complete": complete,
        "failed": failed,
        "lost": lost,
        "duplicate_runs": duplicate_runs,
        "poison": f"{poison}/{sum(job.kind in POISON.values() for job in plan)}",
        "max_try": max_try,
        "elapsed": f"{time.monotonic() - run.started:.1f}s",
        "unfinished": unfinished,
        "wrong": wrong,
        "unique_refused": run.unique_refused,
        "replayed": replayed,
        "attempts": sum(len(r) for j, r in starts.items() if not j.startswith(f"{app.CRON_NAME}:")),
        "child_kills": run.events["child_kills"],
        "cron_ticks": cron_ticks,
        "cron_missed": len(cron_missed),
        "cron_extra_runs": cron_extra,
        "done_after": f"{elapsed_until_done:.1f}s",
    }
    return stats, problems


# --- main ----------------------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="pool-chaos-"))
    # lua-time-limit (busy-reply-threshold in Redis 7): how long a script runs before others get BUSY
    server = RedisServer(
        persistence=True,
        appendfsync=args.appendfsync,
        directory=workdir / "redis",
        config={"lua-time-limit": str(BUSY_REPLY_THRESHOLD_MS)},
    )
    run = Run(args, server, workdir, make_plan(args.jobs, args.seconds, args.seed))
    loop = asyncio.get_running_loop()
    hard_deadline = loop.time() + args.deadline
    client: PoolRedis | None = None
    background: list[asyncio.Task[Any]] = []
    ok = False
    try:
        server.start()
        run.say(
            f"redis-server on port {server.port} (appendonly yes, appendfsync {args.appendfsync}); workdir {workdir}"
        )
        client = await create_pool(RedisSettings.from_dsn(server.url))
        sup = run.start_supervisor()
        await sup.wait_ready(60)
        run.say(f"supervisor {sup.pid} ready with {args.procs} workers")
        await run.enqueue_bulk(client)
        run.say(f"enqueued {sum(j.phase == 'bulk' for j in run.plan)} jobs; chaos for {args.seconds:g}s")

        t0 = loop.time()
        background = [
            asyncio.create_task(run.progress(client)),
            asyncio.create_task(run.watch_supervisor()),
        ]
        await asyncio.gather(
            run.kill_children(t0 + args.seconds),
            run.scheduled_events(t0, args.seconds),
            run.trickle(client, t0),
        )
        run.say(f"chaos over: {dict(run.events)}; waiting for every job's result")
        pending = await run.wait_all_done(client, hard_deadline)
        done_after = time.monotonic() - run.started
        if pending:
            run.say(f"{len(pending)} jobs still without a result at the deadline")
        if not await run.wait_cron_caught_up(client, min(hard_deadline, loop.time() + 30)):
            run.say("the cron job did not catch up within 30 s")
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await run.stop_supervisor()
        stats, problems = await check(run, client, done_after)
        logs = "".join(sup.log() for sup in run.sups)
        # every `fail` job logs its DesignedFailure with a traceback, every `interrupt` job its KeyboardInterrupt:
        # count the others
        designed = logs.count("\ntests.chaos.app.DesignedFailure: ") + logs.count("\nKeyboardInterrupt: poison ")
        stats["other_tracebacks"] = logs.count("Traceback") - designed
        stats["busy_replies_retried"] = logs.count("failed (BUSY ")
        if given_up := logs.count("could not record its outcome"):
            problems.append(f"{given_up} job outcomes were given up by their worker (the job runs again)")
        stats["no_child_to_kill"] = run.events["no_child_to_kill"]
        if run.events["no_child_to_kill"]:
            print(
                f"WARNING: at {run.events['no_child_to_kill']} of the once-a-second kills the supervisor had no worker "
                "alive (its crash backoff); the run had less load than intended",
                flush=True,
            )
        for problem in problems:
            print(f"CHECK FAILED: {problem}", flush=True)
        ok = not problems
        stats["checks"] = "ok" if ok else f"{len(problems)}-failed"
        print(" ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
        return 0 if ok else 1
    finally:
        for task in background:
            task.cancel()
        run.cleanup()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
        server.stop()
        if args.keep or not ok:
            print(f"logs and the AOF kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, help="jobs to enqueue (20000; --quick: 2000)")
    parser.add_argument("--seconds", type=float, help="length of the chaos window (60; --quick: 25)")
    parser.add_argument("--procs", type=int, default=4, help="workers of `pool start` (4)")
    parser.add_argument("--quick", action="store_true", help="the CI variant: 2000 jobs, 25 s of chaos, < 3 min")
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    parser.add_argument("--redis-kill", action="store_true", help="kill -9 redis-server instead of SHUTDOWN")
    parser.add_argument("--kill-every", type=float, default=1.0, help="kill -9 a child every S seconds (1)")
    parser.add_argument("--redis-down", type=float, default=1.0, help="seconds redis-server stays down (1)")
    parser.add_argument("--deadline", type=float, help="give up after this many seconds in all (840; --quick: 150)")
    parser.add_argument("--busy-ms", type=int, default=2500, help="how long the busy script runs, in ms (2500)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the logs and the AOF even when the run passes")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (2000 if args.quick else 20000)
    args.seconds = args.seconds or (25.0 if args.quick else 60.0)
    args.deadline = args.deadline or (150.0 if args.quick else 840.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
