"""The supervisor's parent process: keep N workers alive, reload them without a gap, stop them cleanly.

Shaped like gunicorn's arbiter. One single-threaded loop, woken by a self-pipe or a child's message:

    sleep -> handle queued signals -> reap dead children -> read children's messages
          -> murder stalled children -> recycle (jobs / memory limits) -> manage (spawn, scale, retire)

Signal handlers only queue the signal and wake the loop. Children report READY and heartbeats on a pipe;
a dead child's jobs are handed back at once (the parent knows its consumer name).

Signals: TERM/INT graceful stop (a second one, or QUIT: immediate); HUP reload; TTIN/TTOU one child more/less.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

import psutil
import redis

from pool.client.connections import EXPIRES_EXTRA_MS
from pool.logs import flush_logs
from pool.redis.settings import RedisSettings
from pool.storage.eviction import EvictionPolicyError, judge_policy
from pool.storage.keys import DEFAULT_QUEUE_NAME
from pool.storage.sync import SyncQueue
from pool.utils import plural
from pool.worker.checks import SettingsError, check_worker_kwargs
from pool.worker.exporter import Exporter, MetricsUnavailable, QueueTarget, parse_address, serve
from pool.worker.main import get_kwargs
from pool.worker.redis_wait import RedisUnavailable, default_wait_s, wait_for_redis

from . import health, messages, pidfile, systemd
from .app import App, AppLoadError
from .child import ChildSpec, run_child
from .config import SupervisorConfig
from .handback import hand_back
from .launcher import Reporter
from .leader import SupervisorCron
from .metrics import SupervisorMetrics, supervisor_collector
from .proctitle import set_title

logger = logging.getLogger("pool.supervisor")

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 30.0
SERVED_S = 0.5  # a child that died after serving this long is replaced at once: killed, not crash-looping
KILL_MARGIN_S = 5.0  # after the graceful timeout, this long before SIGKILL
MEMORY_STRIKES = 3  # consecutive samples over --max-memory-per-child before recycling


@dataclass
class Child:
    pid: int
    slot: int
    generation: int
    worker_id: str
    reader: messages.LineReader
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.monotonic)
    ready: bool = False
    ready_at: float = 0.0
    retiring: bool = False
    kill_at: float | None = None
    job_limit: int | None = None
    memory_strikes: int = 0
    rss: int = 0
    cpu: float = 0.0
    process: psutil.Process | None = None
    stats: dict[str, int] = field(default_factory=health.zero_counters)  # every counter, 0 until it reports
    metrics: dict[str, Any] | None = None  # its jobs' metrics totals, from its last heartbeat (--metrics)

    @property
    def state(self) -> str:
        return "retiring" if self.retiring else "ready" if self.ready else "booting"


class Arbiter:
    SIGNALS = (
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGTTIN,
        signal.SIGTTOU,
        signal.SIGCHLD,
    )

    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        self.app = App(config.settings_path)
        self.children: dict[int, Child] = {}
        self.procs = 1
        self.generation = 0
        self.signal_queue: list[int] = []
        self.stopping: str | None = None  # None, "graceful" or "now"
        self.exit_code = 0
        self.crashes = 0
        self.boot_failures = 0
        self.next_spawn_at = 0.0
        self.announced_ready = False
        self.started_wall = time.time()
        self.last_status = 0.0
        self.last_state: tuple[Any, ...] = ()
        self.last_memory_sample = 0.0
        self.queue_name = DEFAULT_QUEUE_NAME
        self.queue_partitions = 1
        self.redis_settings = RedisSettings()
        self.metrics: SupervisorMetrics | None = None  # --metrics: what the parent counts
        self.exporter: Exporter | None = None  # --metrics: the HTTP server (a thread of this process)
        self.allow_eviction = False
        self.worker_overrides: dict[str, Any] = {}
        self.queue: SyncQueue | None = None  # the queue through the storage layer's sync facade
        self.cron: SupervisorCron | None = None
        self.cron_token = uuid4().hex
        self.last_health = 0.0
        self.health_id = health.new_supervisor_id()
        self.cron_wake_at = 0.0
        self.pidfile_fd: int | None = None  # the pidfile, locked while we run (see pidfile.py)
        self.reporter: Reporter | None = None  # `pool start --daemon`: the launching process waits on it
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # --- the loop -----------------------------------------------------------------------------------------------

    def run(self) -> int:
        if self.reporter is not None:
            logger.addHandler(self.reporter)
        try:
            code = self._run()
        finally:
            if self.reporter is not None:
                logger.removeHandler(self.reporter)
        if self.reporter is not None:
            self.reporter.failed(code)  # exiting before it was ready (after ready, this says nothing)
        return code

    def _run(self) -> int:
        if self.app.settings is None:  # `pool start --daemon` loads before detaching, to report errors
            try:
                self.load_app()
            except AppLoadError as exc:
                logger.error("%s", exc)
                return 1
        set_title(f"supervisor [{self.config.settings_path}]")  # before the pidfile: stop/reload check it
        if self.config.pidfile:
            try:
                self.pidfile_fd = pidfile.create(self.config.pidfile)
            except pidfile.PidfileError as exc:
                logger.error("%s", exc)
                return 1
        self.install_signals()
        if not self.start_metrics():
            if self.config.pidfile:
                pidfile.remove(self.config.pidfile, self.pidfile_fd)
            return 1
        logger.info(
            "supervisor %d starting %s for %s (redis %s, queue %r)",
            os.getpid(),
            plural(self.procs, "worker"),
            self.config.settings_path,
            self.redis_settings.describe(),
            self.queue_name,
        )
        gc.freeze()  # objects made so far stay in shared pages in the children
        try:
            code = self.wait_for_redis()
            if code is not None:
                return code
            while True:
                self.sleep()
                self.handle_signals()
                self.reap()
                if self.stopping and not self.children:
                    break
                self.murder_stalled()
                self.recycle()
                self.manage()
                self.lead_cron()
                self.report()
        finally:
            self.close_redis()
            if self.exporter is not None:
                self.exporter.close()
            if self.config.pidfile:
                pidfile.remove(self.config.pidfile, self.pidfile_fd)
        logger.info("supervisor %d stopped", os.getpid())
        return self.exit_code

    def load_app(self) -> None:
        settings = self.app.load()
        kwargs = get_kwargs(settings)
        if not kwargs.get("functions") and not kwargs.get("cron_jobs"):
            raise AppLoadError(f"settings {self.config.settings_path!r} define no functions or cron_jobs")
        try:  # here, not in each forked worker: one line naming the bad entry, and no fork
            check_worker_kwargs(kwargs)
        except SettingsError as exc:
            raise AppLoadError(f"invalid settings {self.config.settings_path!r}: {exc}") from None
        self.procs = self.config.procs or int(getattr(settings, "procs", 0) or 0) or (os.cpu_count() or 1)
        self.queue_name = kwargs.get("queue_name") or DEFAULT_QUEUE_NAME
        self.queue_partitions = int(kwargs.get("queue_partitions") or 1)
        self.redis_settings = self.config.redis_settings or kwargs.get("redis_settings") or RedisSettings()
        self.allow_eviction = bool(kwargs.get("allow_eviction"))
        # the parent leads cron (lead_cron); children only run the cron jobs' functions
        self.worker_overrides = {"schedule_cron": False}
        if self.config.redis_settings is not None:
            self.worker_overrides["redis_settings"] = self.config.redis_settings
        # stop and reload let running jobs finish this long; the rest are cancelled and run again later
        self.worker_overrides["job_completion_wait"] = self.config.graceful_timeout
        cron_jobs = list(kwargs.get("cron_jobs") or [])
        if self.cron is not None:
            self.cron.release()
        if self.queue is not None:
            self.queue.close()
        self.queue = SyncQueue.connect(self.redis_settings, self.queue_name, self.queue_partitions)
        self.cron = SupervisorCron(
            self.queue,
            cron_jobs,
            token=self.cron_token,
            now=lambda: _now(kwargs.get("timezone")),
            serializer=kwargs.get("job_serializer"),
            expires_ms=int(kwargs.get("expires_extra_ms") or EXPIRES_EXTRA_MS),
        )

    def start_metrics(self) -> bool:
        """--metrics: serve the metrics from a thread of this process (supervisor/metrics.py) before any child is
        forked; False (logged, one line) when the address cannot be served."""
        if not self.config.metrics:
            return True
        try:
            address = parse_address(self.config.metrics)
        except ValueError as exc:
            logger.error("--metrics: %s", exc)
            return False
        self.metrics = SupervisorMetrics(self.queue_name)
        collector = supervisor_collector(
            self.metrics,
            lambda: [c.metrics for c in list(self.children.values()) if c.metrics],
            lambda: [c.state for c in list(self.children.values())],
            lambda: self.cron.duty if self.cron is not None and self.cron.duty.cron_jobs else None,
            lambda: QueueTarget(self.redis_settings, self.queue_name, self.queue_partitions),
        )
        try:
            self.exporter = serve(address, collector)
        except MetricsUnavailable as exc:
            logger.error("%s", exc)
            return False
        except OSError as exc:
            logger.error("--metrics: cannot listen on %s:%d: %s", *address, exc.strerror or exc)
            return False
        logger.info("metrics at http://%s:%d/metrics", address[0], self.exporter.port)
        return True

    def close_redis(self) -> None:
        if self.queue is None:
            return
        if self.cron is not None:
            self.cron.release()
        with contextlib.suppress(redis.RedisError, OSError):
            health.remove(self.queue, self.health_id)
        self.queue.close()

    def check_eviction_policy(self) -> int | None:
        """Refuse a Redis that may evict the queue's keys (see pool/storage/eviction.py) before forking: one line and
        exit 1 (None: go on)."""
        assert self.queue is not None
        try:
            judge_policy(self.queue.eviction_policy(), self.redis_settings.describe(), self.allow_eviction)
        except EvictionPolicyError as exc:
            logger.error("%s", exc)
            return 1
        return None

    def wait_for_redis(self) -> int | None:
        """Before forking: wait up to --wait-for-redis while Redis is unreachable or not ready (see
        pool/worker/redis_wait.py, which `pool worker` shares); a refusal (password, ACL) or the wait running out
        is one line and exit 1. Returns None to go on, or the exit code (0 when stopped while waiting)."""
        assert self.queue is not None
        queue = self.queue

        def reachable() -> bool:
            queue.ping()
            queue.ensure_group()  # also proves the ACL lets us at the queue's keys
            return True

        seconds = self.config.wait_for_redis
        try:
            ok = wait_for_redis(
                reachable,
                self.redis_settings,
                default_wait_s(self.redis_settings) if seconds is None else seconds,
                self.pause_while_waiting,
            )
        except RedisUnavailable as exc:
            logger.error("%s", exc)
            return 1
        return self.check_eviction_policy() if ok else 0

    def pause_while_waiting(self, seconds: float) -> bool:
        """Sleep, handling signals meanwhile; False when a stop was asked for."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(InterruptedError):
                select.select([self._wake_r], [], [], max(deadline - time.monotonic(), 0))
            self.drain_wake_pipe()
            self.handle_signals()
            if self.stopping:
                return False
        return True

    def drain_wake_pipe(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

    def sleep(self) -> None:
        fds = [self._wake_r, *(child.reader.fd for child in self.children.values())]
        timeout = min(0.5, self.cron_wake_at - time.monotonic()) if self.cron_wake_at else 0.5
        try:
            readable, _, _ = select.select(fds, [], [], max(timeout, 0.0))
        except InterruptedError:
            return
        if self._wake_r in readable:
            self.drain_wake_pipe()
        for child in list(self.children.values()):
            if child.reader.fd in readable:
                self.read_messages(child)

    # --- signals --------------------------------------------------------------------------------------------------

    def install_signals(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, self.queue_signal)

    def queue_signal(self, sig: int, frame: Any) -> None:
        """The only thing a handler does: remember the signal and wake the loop."""
        self.signal_queue.append(sig)
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b".")

    def handle_signals(self) -> None:
        while self.signal_queue:
            sig = self.signal_queue.pop(0)
            handler = getattr(self, f"handle_{signal.Signals(sig).name.lower()}", None)
            if handler is not None:
                handler()

    def handle_sigchld(self) -> None:
        pass  # reap() runs every turn of the loop

    def handle_sighup(self) -> None:
        if self.stopping:
            return
        logger.info("reloading %s", self.config.settings_path)
        systemd.notify("RELOADING=1")
        try:
            self.load_app()
        except AppLoadError as exc:
            logger.error("reload failed, the running workers keep serving: %s", exc)
            systemd.notify("READY=1")
            return
        self.generation += 1
        self.announced_ready = False

    def handle_sigterm(self) -> None:
        self.stop("now" if self.stopping else "graceful")

    def handle_sigint(self) -> None:
        self.stop("now" if self.stopping else "graceful")

    def handle_sigquit(self) -> None:
        self.stop("now")

    def handle_sigttin(self) -> None:
        self.procs += 1
        logger.info("scaling up to %s", plural(self.procs, "worker"))

    def handle_sigttou(self) -> None:
        self.procs = max(self.procs - 1, 1)
        logger.info("scaling down to %s", plural(self.procs, "worker"))

    def stop(self, how: str) -> None:
        if self.stopping == "now" or self.stopping == how:
            return
        self.stopping = how
        systemd.notify("STOPPING=1")
        grace = self.graceful_timeout() if how == "graceful" else 0.0
        sig = signal.SIGTERM if how == "graceful" else signal.SIGQUIT
        kind = "graceful" if how == "graceful" else "immediate"
        logger.info("%s shutdown of %s", kind, plural(len(self.children), "worker"))
        for child in self.children.values():
            self.signal_child(child, sig, kill_after=grace + KILL_MARGIN_S)

    def graceful_timeout(self) -> float:
        return self.config.graceful_timeout

    # --- children ---------------------------------------------------------------------------------------------------

    def spawn(self, slot: int) -> None:
        worker_id = f"{socket.gethostname()}:{os.getpid()}:w{slot}:{uuid4().hex[:8]}"
        spec = ChildSpec(
            slot,
            self.procs,
            self.config.settings_path,
            worker_id,
            self.config.heartbeat_interval,
            dict(self.worker_overrides),
            os.getpid(),
            metrics=self.metrics is not None,
        )
        read_fd, write_fd = os.pipe()
        flush_logs(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            inherited = [self._wake_r, self._wake_w, *(c.reader.fd for c in self.children.values())]
            if self.pidfile_fd is not None:  # the pidfile's lock must die with the supervisor, not its children
                inherited.append(self.pidfile_fd)
            if self.reporter is not None and self.reporter.fd is not None:  # nor may they hold the launcher's pipe
                inherited.append(self.reporter.fd)
            if self.exporter is not None:  # nor the metrics' port: a new supervisor must be able to take it
                inherited.append(self.exporter.fileno)
            run_child(spec, self.app.settings, write_fd, inherited)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        limit = self.config.max_jobs_per_child
        jittered = limit + random.randint(0, max(limit // 10, 1)) if limit else None
        self.children[pid] = Child(
            pid, slot, self.generation, worker_id, messages.LineReader(read_fd), job_limit=jittered
        )
        logger.info("started worker %d/%d (pid %d)", slot, self.procs, pid)

    def read_messages(self, child: Child) -> None:
        received, _ = child.reader.read()
        for message in received:
            child.last_seen = time.monotonic()
            if message.get("t") == messages.READY and not child.ready:
                child.ready, child.ready_at = True, time.monotonic()
                self.boot_failures = 0
                self.sample_memory(child)  # reported with its ready state, not a second later
                logger.info("worker %d (pid %d) ready", child.slot, child.pid)
            elif message.get("t") == messages.HEARTBEAT:
                totals = message.pop("m", None)
                if isinstance(totals, dict):
                    child.metrics = totals
                child.stats = {**health.zero_counters(), **{k: int(v) for k, v in message.items() if k != "t"}}

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.get(pid)
            if child is None:
                continue
            if self.metrics is None:
                del self.children[pid]
            else:  # its last totals move to the exited ones at once, as a scrape sees them (never counted twice,
                self.read_messages(child)  # nor missing for a moment: a counter must not go back)
                with self.metrics.lock:
                    del self.children[pid]
                    self.metrics.child_exited(child.metrics)
            self.on_child_exit(child, status)

    def on_child_exit(self, child: Child, status: int) -> None:
        self.read_messages(child)
        os.close(child.reader.fd)
        how = describe_exit(status)
        metrics = self.metrics
        if metrics is not None and not (child.retiring or self.stopping):
            metrics.restarted()
        on_error = (lambda: metrics.redis_error("handback")) if metrics is not None else None
        handed_back = hand_back(self.queue, child.worker_id, on_error) if self.queue else 0
        note = f"; {plural(handed_back, 'job')} handed back to the queue" if handed_back else ""
        if child.retiring or self.stopping:
            logger.info("worker %d (pid %d) %s%s", child.slot, child.pid, how, note)
            return
        lived = time.monotonic() - child.started
        if child.ready and time.monotonic() - child.ready_at > SERVED_S:
            self.crashes = 0  # it served, then died (killed, a rare crash): replace it at once
            delay = 0.0
        else:
            self.crashes += 1  # died booting or right after: a crash loop backs off exponentially
            delay = min(BACKOFF_START_S * 2 ** (self.crashes - 1), BACKOFF_MAX_S)
        self.next_spawn_at = time.monotonic() + delay
        if not child.ready:
            self.boot_failures += 1
            logger.error(
                "worker %d (pid %d) %s before it was ready (boot failure %d of %d)%s",
                child.slot,
                child.pid,
                how,
                self.boot_failures,
                self.config.boot_failure_limit,
                note,
            )
            if self.boot_failures >= self.config.boot_failure_limit:
                logger.error(
                    "workers fail to boot (%d times in a row): stopping; see the errors above", self.boot_failures
                )
                self.exit_code = 1
                self.stop("now")
                return
        else:
            level = logging.ERROR if self.crashes >= 3 else logging.WARNING
            logger.log(level, "worker %d (pid %d) %s after %.1fs%s", child.slot, child.pid, how, lived, note)
        if self.crashes >= 3:
            logger.error("workers are crashing in a loop (%d in a row): next restart in %.1fs", self.crashes, delay)

    def signal_child(self, child: Child, sig: int, kill_after: float) -> None:
        try:
            os.kill(child.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + kill_after
        child.kill_at = deadline if child.kill_at is None else min(child.kill_at, deadline)

    def retire(self, child: Child, why: str) -> None:
        if child.retiring:
            return
        logger.info("retiring worker %d (pid %d): %s", child.slot, child.pid, why)
        child.retiring = True
        self.signal_child(child, signal.SIGTERM, kill_after=self.graceful_timeout() + KILL_MARGIN_S)

    def murder_stalled(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.kill_at is not None and now >= child.kill_at:
                logger.error("worker %d (pid %d) did not exit in time: killing it", child.slot, child.pid)
                self.kill(child)
            elif now - child.last_seen > self.config.child_timeout and child.kill_at is None:
                logger.error(
                    "worker %d (pid %d) stalled: no heartbeat for %.0fs; its stack follows, then it is killed",
                    child.slot,
                    child.pid,
                    now - child.last_seen,
                )
                try:
                    os.kill(child.pid, signal.SIGUSR1)  # faulthandler in the child dumps every thread's stack
                    time.sleep(0.2)
                except ProcessLookupError:
                    continue
                self.kill(child)

    def kill(self, child: Child) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        child.kill_at = float("inf")  # reaped soon; never signalled again

    def recycle(self) -> None:
        """Retire children over --max-jobs-per-child or --max-memory-per-child (their replacement spawns)."""
        if self.stopping:
            return
        now = time.monotonic()
        sample_memory = now - self.last_memory_sample >= 1.0
        if sample_memory:
            self.last_memory_sample = now
        for child in list(self.children.values()):
            if child.retiring:
                continue
            done = child.stats.get("complete", 0) + child.stats.get("failed", 0)
            if child.job_limit and done >= child.job_limit:
                self.retire(child, f"{plural(done, 'job')} done (limit {child.job_limit})")
                if self.metrics is not None:
                    self.metrics.recycled("jobs")
                continue
            if sample_memory:
                self.sample_memory(child)

    def sample_memory(self, child: Child) -> None:
        try:
            if child.process is None:
                child.process = psutil.Process(child.pid)
            info = child.process.memory_full_info()
            child.cpu = child.process.cpu_percent(None)
        except (psutil.Error, OSError):
            return
        child.rss = int(info.rss)
        limit = self.config.max_memory_per_child_mb
        if not limit:
            return
        uss_mb = info.uss / 1024 / 1024
        child.memory_strikes = child.memory_strikes + 1 if uss_mb > limit else 0
        if child.memory_strikes >= MEMORY_STRIKES and not child.retiring:
            self.retire(child, f"memory {uss_mb:.0f} MB over the limit of {limit:g} MB")
            if self.metrics is not None:
                self.metrics.recycled("memory")

    def manage(self) -> None:
        """Spawn missing children, scale down, and retire old-generation children as new ones get ready."""
        if self.stopping:
            return
        current = [c for c in self.children.values() if c.generation == self.generation and not c.retiring]
        old = [c for c in self.children.values() if c.generation < self.generation and not c.retiring]
        for extra in sorted(current, key=lambda c: (c.ready, -c.started))[: max(len(current) - self.procs, 0)]:
            self.retire(extra, "scaling down")
            current.remove(extra)
        rolling = bool(old)
        while len(current) < self.procs and time.monotonic() >= self.next_spawn_at:
            if rolling and any(not c.ready for c in current):
                break  # a reload replaces one worker at a time, each gated on the new one being ready
            used = {c.slot for c in current}
            slot = next(i for i in range(1, self.procs + 1) if i not in used)
            self.spawn(slot)
            current = [c for c in self.children.values() if c.generation == self.generation and not c.retiring]
            if rolling:
                break
        ready_new = sum(c.ready for c in current)
        for child in sorted(old, key=lambda c: c.started)[: max(len(old) - max(self.procs - ready_new, 0), 0)]:
            self.retire(child, "replaced by reloaded code")

    def lead_cron(self) -> None:
        if self.cron is None or self.stopping:
            return
        if time.monotonic() >= self.cron_wake_at:
            errors = self.cron.errors
            self.cron_wake_at = time.monotonic() + self.cron.run_due()
            if self.metrics is not None and self.cron.errors != errors:
                self.metrics.redis_error("cron")

    # --- reporting --------------------------------------------------------------------------------------------------

    def report(self) -> None:
        """Write the status file (``pool status``) and the health entry (``pool health``) from one snapshot when a
        child's state changed, and otherwise every second (status) and every --health-interval (health); then,
        once every worker is ready, say so (systemd, the --daemon launcher): anyone told "ready" who looks at
        either sees it."""
        now = time.monotonic()
        state = self.state_signature()
        changed = state != self.last_state
        self.last_state = state
        snapshot: dict[str, Any] | None = None
        if self.config.pidfile and (changed or now - self.last_status >= 1.0):
            self.last_status = now
            snapshot = self.status()
            pidfile.write_status(self.config.pidfile, snapshot)
        if (
            self.queue is not None
            and not self.stopping
            and (changed or now - self.last_health >= self.config.health_interval)
        ):
            self.last_health = now
            self.write_health(snapshot or self.status())
        ready = [c for c in self.children.values() if c.ready and c.generation == self.generation]
        if not self.announced_ready and len(ready) >= self.procs and not self.stopping:
            self.announced_ready = True
            systemd.notify("READY=1")
            logger.info("%s ready", plural(len(ready), "worker"))
            if self.reporter is not None:
                self.reporter.ready(
                    f"supervisor pid {os.getpid()} ready with {plural(len(ready), 'worker')} "
                    f"(pidfile {self.config.pidfile})"
                )

    def state_signature(self) -> tuple[Any, ...]:
        """What ``pool status`` must show without delay when it changes: each child's pid and state, the wanted
        count, whether stopping."""
        children = tuple(sorted((c.pid, c.state) for c in self.children.values()))
        return (self.procs, self.stopping, children)

    def write_health(self, status: dict[str, Any]) -> None:
        assert self.queue is not None
        try:
            entry = health.build_entry(
                self.health_id,
                status,
                self.queue.counts(),
                self.cron is not None and self.cron.leading,
                self.config.health_interval,
                health.redis_now_ms(self.queue),
            )
            health.write(self.queue, entry, self.config.health_interval)
        except (redis.RedisError, OSError) as exc:
            logger.warning("health: redis error (%s)", exc)
            if self.metrics is not None:
                self.metrics.redis_error("health")

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "settings": self.config.settings_path,
            "started": self.started_wall,
            "procs": self.procs,
            "generation": self.generation,
            "stopping": self.stopping,
            "children": [
                {
                    "slot": c.slot,
                    "pid": c.pid,
                    "state": c.state,
                    "generation": c.generation,
                    "started": c.started_wall,
                    "rss": c.rss,
                    "cpu": c.cpu,
                    "heartbeat_age": round(time.monotonic() - c.last_seen, 2),
                    "stuck": c.ready and time.monotonic() - c.last_seen > health.STUCK_AFTER_S,
                    **c.stats,
                }
                for c in sorted(self.children.values(), key=lambda c: c.slot)
            ],
        }


def _now(timezone: Any) -> datetime:
    return datetime.now(tz=timezone) if timezone else datetime.now().astimezone()


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
