"""Job failures reported to Sentry: ``pip install 'pool-queue[sentry]'``, then in the worker's settings::

    import sentry_sdk
    from pool.integrations.sentry import report_job_failure

    sentry_sdk.init(dsn=...)

    class WorkerSettings:
        functions = [...]
        on_job_failure = report_job_failure

Sentry's own arq integration patches ``arq.*`` and so sees nothing of pool; this is the same report through
pool's ``on_job_failure`` hook. Each failure a worker records (an exception the job raised, a timeout, max tries
exceeded, a payload it could not decode, a function it does not know) becomes one Sentry event, marked unhandled,
with the job's id, function, try and queue as tags (``pool.job_id``, ``pool.function``, ``pool.job_try``,
``pool.queue``) and a ``pool job`` context that adds its enqueue time. The exception's ``extra()`` (arq's
convention), when it has one, goes into the ``pool job`` context too. A ``Retry``, an abort and a job handed back
at shutdown are not failures and are not reported.

To report from a hook of your own as well, call ``await report_job_failure(ctx, exc)`` from it.
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.utils import event_from_exception

MECHANISM = {"type": "pool", "handled": False}


async def report_job_failure(ctx: dict[str, Any], exc: BaseException) -> None:
    """``on_job_failure`` hook: capture ``exc`` in Sentry with the job's tags and context (see the module)."""
    client = sentry_sdk.get_client()
    if not client.is_active():  # sentry_sdk.init was not called (or had no DSN): nothing to report to
        return
    job = {
        "job_id": ctx.get("job_id"),
        "function": ctx.get("function"),
        "job_try": ctx.get("job_try"),
        "queue": ctx.get("queue_name"),
        "enqueue_time": _text(ctx.get("enqueue_time")),
    }
    extra = _extra(exc)
    if extra is not None:
        job["extra"] = extra
    event, hint = event_from_exception(exc, client_options=client.options, mechanism=MECHANISM)
    with sentry_sdk.new_scope() as scope:
        for key in ("job_id", "function", "job_try", "queue"):
            if job[key] is not None:
                scope.set_tag(f"pool.{key}", job[key])
        scope.set_context("pool job", job)
        if job["function"]:
            scope.set_transaction_name(str(job["function"]))
        sentry_sdk.capture_event(event, hint=hint)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _extra(exc: BaseException) -> Any:
    """arq's ``extra`` of a job's exception (an attribute, or a method returning it); None if absent or failing."""
    try:
        extra = getattr(exc, "extra", None)
        return extra() if callable(extra) else extra
    except Exception:
        return None
