"""The storage layer's ops behave the same on the async driver (workers, clients) and the sync driver (the
supervisor's SyncQueue): for each op the supervisor uses, the same op run both ways against one real Redis,
from the same starting state, gives the same result and leaves the same state behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from pool import PoolRedis, cron
from pool.storage import ops
from pool.storage.drivers import run
from pool.storage.keys import CONSUMER_GROUP, QueueKeys
from pool.storage.ops import Op
from pool.storage.sync import SyncQueue
from pool.worker.scheduler import CronDuty
from tests.redis_server import RedisServer

KEYS = QueueKeys("default")
Setup = Callable[[PoolRedis], Awaitable[None]]
Effect = Callable[[PoolRedis], Awaitable[Any]]


async def _nothing(redis: PoolRedis) -> None:
    return None


async def _no_effect(redis: PoolRedis) -> None:
    return None


async def _tick(ctx: dict[str, Any]) -> None:
    return None


async def _jobs_in_all_states(redis: PoolRedis) -> None:
    """Two ready jobs, one read by consumer c1 (running), one deferred, one parked function list."""
    await redis.xgroup_create(KEYS.stream, CONSUMER_GROUP, id="0", mkstream=True)
    for job_id in ("a", "b"):
        await redis.enqueue_job("f", _job_id=job_id)
    await redis.enqueue_job("f", _job_id="later", _defer_by=3600)
    await redis.xreadgroup(CONSUMER_GROUP, "c1", {KEYS.stream: ">"}, count=1)
    await redis.sadd(KEYS.parked_functions, "g")
    await redis.rpush(KEYS.parked("g"), "p1", "p2")


async def _lock_held(redis: PoolRedis) -> None:
    await redis.set(KEYS.cron_leader, "token", px=5000)


async def _fence_set(redis: PoolRedis) -> None:
    await redis.set(KEYS.cron_fence("tick"), "123")


async def _health_written(redis: PoolRedis) -> None:
    await run(redis, ops.write_health(KEYS.supervisor_health("s1"), KEYS.supervisors, "s1", '{"id": "s1"}', 60_000))


async def _stream_state(redis: PoolRedis) -> Any:
    """Per lane: its length, its pending count, and the job ids of its entries."""
    state = []
    for lane in KEYS.lanes:
        groups = [g["name"] for g in await redis.xinfo_groups(lane)] if await redis.exists(lane) else []
        pending: Any = await redis.xpending(lane, CONSUMER_GROUP) if groups else {"pending": None}
        entries = await redis.xrange(lane)
        state.append((pending["pending"], sorted(f[b"id"] for _, f in entries)))
    return state


async def _groups(redis: PoolRedis) -> Any:
    return [[g["name"] for g in await redis.xinfo_groups(lane)] for lane in KEYS.lanes]


async def _lock(redis: PoolRedis) -> Any:
    return await redis.get(KEYS.cron_leader), await redis.pttl(KEYS.cron_leader) > 0


async def _supervisor_health(redis: PoolRedis) -> Any:
    return await run(redis, ops.live_entries(KEYS.supervisors, KEYS.supervisor_health))


def _duty_turn() -> Op[str]:
    """A fresh supervisor-side cron duty's first turn: takes the lead and runs its run_at_startup job."""
    job = cron(_tick, name="tick", run_at_startup=True, job_id="tick-job")
    duty = CronDuty(KEYS, [job], now=datetime.now, serializer=None, expires_ms=60_000, token="duty")
    wake = yield from duty.turn()
    return "leading, wakes in a positive time" if duty.leading and wake > 0 else "not leading"


@dataclass(frozen=True)
class Case:
    name: str
    op: Callable[[], Op[Any]]
    expected: Any
    setup: Setup = _nothing
    effect: Effect = _no_effect


CASES = [
    Case("ping", ops.ping, None),
    Case("eviction_policy", ops.eviction_policy, "noeviction"),
    Case("ensure_group", lambda: ops.ensure_group(KEYS), len(KEYS.lanes), effect=_groups),
    Case("ensure_group, one there", lambda: ops.ensure_group(KEYS), len(KEYS.lanes) - 1, _jobs_in_all_states, _groups),
    Case("counts, empty queue", lambda: ops.counts(KEYS), {"ready": 0, "running": 0, "deferred": 0, "parked": 0}),
    Case(
        "counts",
        lambda: ops.counts(KEYS),
        {"ready": 1, "running": 1, "deferred": 1, "parked": 2},
        _jobs_in_all_states,
    ),
    Case("lane_counts, empty queue", lambda: ops.lane_counts(KEYS), [(0, 0)] * 4),
    Case("lane_counts", lambda: ops.lane_counts(KEYS), [(1, 1), (0, 0), (0, 0), (0, 0)], _jobs_in_all_states),
    Case("hand_back", lambda: ops.hand_back(KEYS, "c1"), 1, _jobs_in_all_states, _stream_state),
    Case("hand_back, no group", lambda: ops.hand_back(KEYS, "c1"), 0),
    Case(
        "write_health",
        lambda: ops.write_health(KEYS.supervisor_health("s1"), KEYS.supervisors, "s1", '{"id": "s1"}', 60_000),
        None,
        effect=_supervisor_health,
    ),
    Case(
        "clear_health",
        lambda: ops.clear_health(KEYS.supervisor_health("s1"), KEYS.supervisors, "s1"),
        None,
        _health_written,
        _supervisor_health,
    ),
    Case("take_lock", lambda: ops.take_lock(KEYS.cron_leader, "token", 5000), True, effect=_lock),
    Case("take_lock, taken", lambda: ops.take_lock(KEYS.cron_leader, "other", 5000), False, _lock_held, _lock),
    Case("extend_lock", lambda: ops.extend_lock(KEYS.cron_leader, "token", 5000), True, _lock_held, _lock),
    Case("release_lock", lambda: ops.release_lock(KEYS.cron_leader, "token"), None, _lock_held, _lock),
    Case("cron_fence", lambda: ops.cron_fence(KEYS, "tick"), 123, _fence_set),
    Case("cron_fence, none", lambda: ops.cron_fence(KEYS, "tick"), None),
    Case("cron duty turn", _duty_turn, "leading, wakes in a positive time", effect=lambda r: _duty_effect(r)),
]


async def _duty_effect(redis: PoolRedis) -> Any:
    return await redis.get(KEYS.cron_leader), await _stream_state(redis)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_an_op_gives_the_same_result_and_effect_on_the_async_and_the_sync_driver(
    case: Case, redis: PoolRedis, redis_server: RedisServer
) -> None:
    await redis.flushall()
    await case.setup(redis)
    async_result = await run(redis, case.op())
    async_effect = await case.effect(redis)

    await redis.flushall()
    await case.setup(redis)
    queue = SyncQueue(redis_server.client(), KEYS.queue_name)
    try:
        sync_result = queue.run(case.op())
    finally:
        queue.close()
    sync_effect = await case.effect(redis)

    assert async_result == sync_result == case.expected
    assert async_effect == sync_effect
