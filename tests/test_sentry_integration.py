"""pool.integrations.sentry: job failures reach Sentry through the on_job_failure hook (the ``sentry`` extra).

Events are caught by a Transport kept in memory: nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pool import PoolRedis, Retry
from tests.worker_utils import run_burst

sentry_sdk = pytest.importorskip("sentry_sdk")

from sentry_sdk.envelope import Envelope  # noqa: E402
from sentry_sdk.transport import Transport  # noqa: E402

from pool.integrations.sentry import report_job_failure  # noqa: E402


class MemoryTransport(Transport):  # type: ignore[misc]
    """Keeps each event sent, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(event)


@pytest.fixture
def sentry_events() -> Iterator[list[dict[str, Any]]]:
    transport = MemoryTransport()
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=transport, default_integrations=False)
    try:
        yield transport.events
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


class PaymentDeclined(Exception):
    def extra(self) -> dict[str, Any]:
        return {"card": "visa"}


async def charge(ctx: dict[str, Any], amount: int) -> None:
    raise PaymentDeclined(f"declined: {amount}")


async def retried(ctx: dict[str, Any]) -> None:
    if ctx["job_try"] == 1:
        raise Retry(defer=0)


async def test_a_job_failure_is_reported_to_sentry_with_the_jobs_id_function_try_and_queue(
    redis: PoolRedis, redis_url: str, sentry_events: list[dict[str, Any]]
) -> None:
    job = await redis.enqueue_job("charge", 12, _queue_name="payments", _job_try=2)
    await redis.enqueue_job("retried", _queue_name="payments")
    assert job is not None
    worker = await run_burst(
        redis_url, functions=[charge, retried], queue_name="payments", on_job_failure=report_job_failure
    )
    assert (worker.jobs_failed, worker.jobs_complete) == (1, 1)
    sentry_sdk.flush(timeout=5)

    assert len(sentry_events) == 1  # the Retry is not a failure
    event = sentry_events[0]
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "PaymentDeclined" and exception["value"] == "declined: 12"
    assert exception["mechanism"] == {"type": "pool", "handled": False}
    assert any(frame["function"] == "charge" for frame in exception["stacktrace"]["frames"])
    assert event["tags"] == {
        "pool.job_id": job.job_id,
        "pool.function": "charge",
        "pool.job_try": 2,
        "pool.queue": "payments",
    }
    context = event["contexts"]["pool job"]
    assert (context["job_id"], context["function"], context["queue"]) == (job.job_id, "charge", "payments")
    assert context["extra"] == {"card": "visa"} and context["enqueue_time"]
    assert event["transaction"] == "charge"


async def test_without_sentry_initialised_reporting_does_nothing() -> None:
    assert not sentry_sdk.get_client().is_active()
    await report_job_failure({"job_id": "x"}, ValueError("no client"))
