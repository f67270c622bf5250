"""The tracing hook: where a tracer (pool/integrations/otel.py) plugs into enqueues and job runs.

pool's layers call this module only; none imports a tracing library. With no tracer installed (the default) an
enqueue and a job run each pay one global lookup. ``pool.integrations.otel.instrument()`` installs one; it could
be any object with these methods.

Trace context travels inside the job: ``prepare_job`` stores the enqueuing context's carrier (W3C
``traceparent``/``tracestate``) in the payload under ``"tc"``, and the worker starts the job's span as its child.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

# The payload's field holding the trace context (pool/storage/codecs.py lists the payload's fields)
CARRIER_FIELD = "tc"

# The spans' attributes (besides OpenTelemetry's messaging conventions, which the tracer adds)
JOB_ID = "pool.job.id"
FUNCTION = "pool.job.function"
QUEUE = "pool.queue"
JOB_TRY = "pool.job.try"
OUTCOME = "pool.job.outcome"


class SpanHandle(Protocol):
    """What pool tells a span while it is open."""

    def set_attribute(self, key: str, value: str | int) -> None: ...

    def set_outcome(self, outcome: str, error: BaseException | None) -> None:
        """How the run or enqueue ended (``complete``, ``failed``, ``retried``, ``enqueued``, ``duplicate``...),
        with the failure's exception."""


class Tracer(Protocol):
    def carrier(self) -> dict[str, str] | None:
        """The current trace context to store in a job being prepared; None when there is none."""

    def enqueue_span(self, function: str, queue_name: str) -> AbstractContextManager[SpanHandle]:
        """A span around one ``enqueue_job`` (the producer's side); current while the job is prepared, so the
        job carries it."""

    def job_span(
        self, carrier: Mapping[str, str] | None, function: str, job_id: str, queue_name: str, job_try: int
    ) -> AbstractContextManager[SpanHandle]:
        """A span around one run of a job (the worker's side), a child of ``carrier``'s context; current while
        the job runs, so the job's own spans are its children."""


tracer: Tracer | None = None


def set_tracer(new: Tracer | None) -> None:
    """Install ``new`` for every enqueue and job run of this process (None: tracing off)."""
    global tracer
    tracer = new


def carrier_of(data: Mapping[str, Any]) -> Mapping[str, str] | None:
    """A decoded payload's carrier, if it holds a well-formed one."""
    found = data.get(CARRIER_FIELD)
    if isinstance(found, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        return found
    return None
