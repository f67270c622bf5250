"""OpenTelemetry tracing: ``pip install 'pool-queue[otel]'``, then, in the code producers and workers import::

    from pool.integrations.otel import instrument

    instrument()            # after the TracerProvider is set up; or instrument(tracer_provider=provider)

Each ``enqueue_job`` gets a PRODUCER span (``enqueue <function>``) and each run of a job a CONSUMER span
(``run <function>``). The enqueuing context travels inside the job (W3C ``traceparent``/``tracestate`` in the
payload's ``tc`` field, see pool/tracing.py), so a run's span is a child of the span the job was enqueued in:
``enqueue_job``'s own span, or, for ``enqueue_many`` and pool.rq's ``Queue.enqueue`` (which have no span of
their own), whatever span was current when the job was prepared. Every try of a job is a span of its own, each a
child of that one context; an ``_on_success``/``_on_failure`` callback's run is a child of its job's run.

Attributes: ``pool.job.id``, ``pool.job.function``, ``pool.queue``, ``pool.job.try`` (runs), ``pool.job.outcome``
(``enqueued`` or ``duplicate``; ``complete``, ``failed``, ``aborted``, ``retried`` or ``handed_back``), and
OpenTelemetry's messaging attributes (``messaging.system`` = ``pool``, ``messaging.destination.name``,
``messaging.message.id``, ``messaging.operation.type``). A failed run records its exception on the span and sets
the span's status to ERROR; so does an enqueue that raises.

pool's layers never import this module nor opentelemetry: until ``instrument()`` runs, nothing is traced and
nothing is paid but a lookup per enqueue and per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .. import tracing
from ..version import VERSION

_W3C = TraceContextTextMapPropagator()
SYSTEM = "pool"
# outcomes that are the job's failure: the span's status is ERROR
FAILED_OUTCOMES = frozenset({"failed"})


class _SpanHandle:
    """pool's view of an OpenTelemetry span (pool.tracing.SpanHandle)."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def set_attribute(self, key: str, value: str | int) -> None:
        self.span.set_attribute(key, value)
        if key == tracing.JOB_ID:
            self.span.set_attribute("messaging.message.id", value)

    def set_outcome(self, outcome: str, error: BaseException | None) -> None:
        self.span.set_attribute(tracing.OUTCOME, outcome)
        if error is not None:
            self.span.record_exception(error)
        if outcome in FAILED_OUTCOMES:
            detail = f"{type(error).__name__}: {error}" if error is not None else outcome
            self.span.set_status(Status(StatusCode.ERROR, detail))


class OtelTracer:
    """pool.tracing.Tracer on OpenTelemetry's API."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("pool", VERSION, tracer_provider=tracer_provider)

    def carrier(self) -> dict[str, str] | None:
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)  # nothing when there is no valid current span
        return carrier or None

    @contextmanager
    def enqueue_span(self, function: str, queue_name: str) -> Iterator[_SpanHandle]:
        attributes: dict[str, Any] = {
            tracing.FUNCTION: function,
            tracing.QUEUE: queue_name,
            "messaging.system": SYSTEM,
            "messaging.destination.name": queue_name,
            "messaging.operation.type": "send",
        }
        with self._tracer.start_as_current_span(
            f"enqueue {function}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            yield _SpanHandle(span)

    @contextmanager
    def job_span(
        self, carrier: Mapping[str, str] | None, function: str, job_id: str, queue_name: str, job_try: int
    ) -> Iterator[_SpanHandle]:
        parent = _W3C.extract(dict(carrier)) if carrier else None
        attributes: dict[str, Any] = {
            tracing.JOB_ID: job_id,
            tracing.FUNCTION: function,
            tracing.QUEUE: queue_name,
            tracing.JOB_TRY: job_try,
            "messaging.system": SYSTEM,
            "messaging.destination.name": queue_name,
            "messaging.message.id": job_id,
            "messaging.operation.type": "process",
        }
        with self._tracer.start_as_current_span(
            f"run {function}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield _SpanHandle(span)


def instrument(tracer_provider: TracerProvider | None = None) -> OtelTracer:
    """Trace every enqueue and job run of this process from now on (the global TracerProvider unless one is
    given). Call it in producers and in workers alike: both sides are needed for the parent/child link."""
    tracer = OtelTracer(tracer_provider)
    tracing.set_tracer(tracer)
    return tracer


def uninstrument() -> None:
    """Stop tracing (spans already open end as usual)."""
    tracing.set_tracer(None)
