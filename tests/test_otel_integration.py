"""pool.integrations.otel: a span per enqueue and per job run, the run's span a child of the enqueue's (the ``otel``
extra). Spans go to the SDK's InMemorySpanExporter; the worker is a real one (burst mode) on a private Redis.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pool import PoolRedis, Retry
from pool.storage.codecs import deserialize_job
from pool.storage.keys import QueueKeys
from tests.test_cli import REPO_ROOT, pool_env
from tests.worker_utils import run_burst

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from pool.integrations.otel import instrument, uninstrument


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    try:
        yield provider, exporter
    finally:
        uninstrument()
        provider.shutdown()


async def resize(ctx: dict[str, Any], width: int) -> int:
    return width * 2


CURRENT_IN_JOB: list[Any] = []


async def traced_inside(ctx: dict[str, Any]) -> None:
    """Notes the span current while it runs: the job's own spans are children of that one."""
    from opentelemetry import trace

    CURRENT_IN_JOB.append(trace.get_current_span().get_span_context())


def traced_sync(ctx: dict[str, Any]) -> None:
    """The same from a sync job, which runs in a thread."""
    from opentelemetry import trace

    CURRENT_IN_JOB.append(trace.get_current_span().get_span_context())


class CardDeclined(Exception):
    pass


async def charge(ctx: dict[str, Any]) -> None:
    raise CardDeclined("declined")


async def flaky(ctx: dict[str, Any]) -> None:
    if ctx["job_try"] == 1:
        raise Retry(defer=0)


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def test_a_jobs_run_span_is_a_child_of_its_enqueue_span_in_the_producers_trace(
    redis: PoolRedis, redis_url: str, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    tracer_provider, exporter = provider
    CURRENT_IN_JOB.clear()
    with tracer_provider.get_tracer("app").start_as_current_span("request") as request:
        job = await redis.enqueue_job("resize", 3, _queue_name="images")
        await redis.enqueue_job("traced_inside", _queue_name="images")
        await redis.enqueue_job("traced_sync", _queue_name="images")
    assert job is not None

    worker = await run_burst(redis_url, functions=[resize, traced_inside, traced_sync], queue_name="images")
    assert worker.jobs_complete == 3

    (enqueue,) = [s for s in spans_named(exporter, "enqueue resize")]
    (run,) = spans_named(exporter, "run resize")
    trace_id = request.get_span_context().trace_id
    assert enqueue.context is not None and run.context is not None
    assert enqueue.context.trace_id == run.context.trace_id == trace_id
    assert enqueue.parent is not None and enqueue.parent.span_id == request.get_span_context().span_id
    assert run.parent is not None and run.parent.span_id == enqueue.context.span_id
    assert (enqueue.kind, run.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert dict(enqueue.attributes or {}) == {
        "pool.job.function": "resize",
        "pool.queue": "images",
        "pool.job.id": job.job_id,
        "pool.job.outcome": "enqueued",
        "messaging.system": "pool",
        "messaging.destination.name": "images",
        "messaging.operation.type": "send",
        "messaging.message.id": job.job_id,
    }
    attributes = dict(run.attributes or {})
    assert {k: attributes[k] for k in ("pool.job.id", "pool.job.function", "pool.queue", "pool.job.try")} == {
        "pool.job.id": job.job_id,
        "pool.job.function": "resize",
        "pool.queue": "images",
        "pool.job.try": 1,
    }
    assert attributes["pool.job.outcome"] == "complete"
    assert run.status.status_code == StatusCode.UNSET
    (traced_run,) = spans_named(exporter, "run traced_inside")
    (sync_run,) = spans_named(exporter, "run traced_sync")
    # each job's span is current while it runs
    assert traced_run.context is not None and sync_run.context is not None
    assert sorted(c.span_id for c in CURRENT_IN_JOB) == sorted([traced_run.context.span_id, sync_run.context.span_id])


async def test_a_failing_jobs_span_has_error_status_and_the_exception(
    redis: PoolRedis, redis_url: str, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, exporter = provider
    await redis.enqueue_job("charge")
    worker = await run_burst(redis_url, functions=[charge], max_tries=1)
    assert worker.jobs_failed == 1

    (run,) = spans_named(exporter, "run charge")
    assert run.status.status_code == StatusCode.ERROR
    assert run.status.description == "CardDeclined: declined"
    assert (run.attributes or {})["pool.job.outcome"] == "failed"
    (event,) = [e for e in run.events if e.name == "exception"]
    assert (event.attributes or {})["exception.type"].endswith("CardDeclined")


async def test_each_try_is_its_own_span_under_the_one_enqueue(
    redis: PoolRedis, redis_url: str, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, exporter = provider
    await redis.enqueue_job("flaky")
    await run_burst(redis_url, functions=[flaky])

    (enqueue,) = spans_named(exporter, "enqueue flaky")
    runs = sorted(spans_named(exporter, "run flaky"), key=lambda s: (s.attributes or {})["pool.job.try"])
    assert [((s.attributes or {})["pool.job.try"], (s.attributes or {})["pool.job.outcome"]) for s in runs] == [
        (1, "retried"),
        (2, "complete"),
    ]
    assert enqueue.context is not None
    assert all(s.parent is not None and s.parent.span_id == enqueue.context.span_id for s in runs)


async def test_a_duplicate_job_id_is_an_enqueue_span_saying_so(
    redis: PoolRedis, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, exporter = provider
    assert await redis.enqueue_job("resize", 1, _job_id="once") is not None
    assert await redis.enqueue_job("resize", 1, _job_id="once") is None

    outcomes = [(s.attributes or {})["pool.job.outcome"] for s in spans_named(exporter, "enqueue resize")]
    assert outcomes == ["enqueued", "duplicate"]


async def test_without_instrument_jobs_carry_no_trace_context(redis: PoolRedis) -> None:
    job = await redis.enqueue_job("resize", 1)
    assert job is not None
    payload = await redis.hget(QueueKeys("default").job(job.job_id), "d")  # type: ignore[misc]
    assert payload is not None
    assert "tc" not in deserialize_job(payload, None)


# With opentelemetry made unimportable, pool imports and works as ever: its layers never import it (make lint's
# import contracts say so too); only pool.integrations.otel needs it.
WITHOUT_OTEL = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"blocked: {name}", name=name)
        return None

sys.meta_path.insert(0, Block())
import pool, pool.worker.main, pool.client.connections, pool.cli.commands, pool.rq, pool.tracing
assert pool.tracing.tracer is None
try:
    import pool.integrations.otel
except ModuleNotFoundError as exc:
    print("otel integration needs", exc.name)
"""


def test_pool_runs_without_opentelemetry_and_only_its_integration_needs_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL],
        cwd=REPO_ROOT,
        env=pool_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("otel integration needs opentelemetry")


def test_a_job_from_rqs_sync_queue_carries_the_span_current_when_it_was_enqueued(
    redis_url: str, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    import asyncio

    from redis import Redis

    from pool.rq import Queue

    tracer_provider, exporter = provider
    connection = Redis.from_url(redis_url)
    try:
        with tracer_provider.get_tracer("app").start_as_current_span("sync request") as request:
            Queue(connection=connection).enqueue("resize", 4)
    finally:
        connection.close()
    asyncio.run(run_burst(redis_url, functions=[resize]))

    (run,) = spans_named(exporter, "run resize")
    assert run.parent is not None and run.parent.span_id == request.get_span_context().span_id
    assert run.context is not None and run.context.trace_id == request.get_span_context().trace_id


async def notify(ctx: dict[str, Any], job_id: str, result: Any) -> None:
    return None


async def test_a_callbacks_run_is_a_child_of_its_jobs_run(
    redis: PoolRedis, redis_url: str, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, exporter = provider
    await redis.enqueue_job("resize", 5, _on_success="notify")
    await run_burst(redis_url, functions=[resize, notify])

    (run,) = spans_named(exporter, "run resize")
    (callback,) = spans_named(exporter, "run notify")
    assert run.context is not None and callback.context is not None
    assert callback.parent is not None and callback.parent.span_id == run.context.span_id
    assert callback.context.trace_id == run.context.trace_id


class _ForgedCarrier:
    """A producer's tracer that stores whatever ``carrier`` says: an untrusted producer's ``tc`` field."""

    def __init__(self, carrier: Any) -> None:
        self._carrier = carrier

    def carrier(self) -> Any:
        return self._carrier

    @contextmanager
    def enqueue_span(self, function: str, queue_name: str) -> Iterator[Any]:
        yield self

    def set_attribute(self, key: str, value: str | int) -> None:
        pass

    def set_outcome(self, outcome: str, error: BaseException | None) -> None:
        pass


MALFORMED_CARRIERS = [
    "00-not-a-map",
    ["traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01"],
    {"traceparent": 7},
    {1: "x", "traceparent": None},
    {"traceparent": "00-zz-zz-zz"},
    {"traceparent": "ff-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},
    {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "tracestate": "=,=" * 20000},
    {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "tracestate": {"k": "v"}},
    {"traceparent": "\x00\x7f\u2028" * 10, "tracestate": "k=\x00"},
    {"traceparent": "x" * 1_000_000},
]


async def test_a_malformed_trace_context_in_a_payload_never_fails_the_job(
    redis: PoolRedis, redis_url: str, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A producer pool does not control may put anything in ``tc``: the job runs (in a trace of its own)."""
    from pool import tracing

    real = tracing.tracer
    try:
        for i, carrier in enumerate(MALFORMED_CARRIERS):
            tracing.set_tracer(_ForgedCarrier(carrier))  # type: ignore[arg-type]
            await redis.enqueue_job("resize", i, _job_id=f"forged-{i}")
    finally:
        tracing.set_tracer(real)
    worker = await run_burst(redis_url, functions=[resize], max_tries=1)
    assert (worker.jobs_complete, worker.jobs_failed) == (len(MALFORMED_CARRIERS), 0)
    _, exporter = provider
    assert len(spans_named(exporter, "run resize")) == len(MALFORMED_CARRIERS)


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


async def unprintable(ctx: dict[str, Any]) -> None:
    raise Unprintable()


async def test_a_job_failing_with_an_unprintable_exception_is_recorded_as_failed(
    redis: PoolRedis, redis_url: str, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """The span's status and exception event are written from the exception's text: one whose __str__ raises
    must still leave the job failed (as without tracing), and its span ended."""
    job = await redis.enqueue_job("unprintable")
    assert job is not None
    worker = await run_burst(redis_url, functions=[unprintable], max_tries=1)
    assert (worker.jobs_complete, worker.jobs_failed) == (0, 1)
    assert (await job.info()) is not None and await job.status() == "complete"
    _, exporter = provider
    (run,) = spans_named(exporter, "run unprintable")
    assert run.status.status_code == StatusCode.ERROR
    assert (run.attributes or {})["pool.job.outcome"] == "failed"
