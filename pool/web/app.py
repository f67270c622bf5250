"""The dashboard as a Starlette app: ``create_app(redis_settings, queues=[...])``.

Every page is rendered on the server (Jinja2, autoescaped: job arguments, results and tracebacks are user data)
from pool's inspection API (pool/client/inspection.py, health_report.py): counts are the queue's O(1) counters
(XLEN, ZCARD, XPENDING's summary...), lists are ranges with a COUNT, so a page costs the same with ten jobs
queued or ten million. Actions (abort, requeue, purge) are POSTs behind the CSRF check (security.py), refused
in read-only mode, whose forms are not drawn either.

The Redis client is made on the first request rather than at start-up: a mounted Starlette or FastAPI
sub-application is not sent lifespan events. Closed by the app's lifespan when it has one, or ``Dashboard.close``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..client import inspection
from ..client.connections import PoolRedis, create_pool
from ..client.health_report import entries_of, worker_lines
from ..redis.settings import RedisSettings
from ..storage.keys import DEFAULT_QUEUE_NAME, validate_queue_name
from ..storage.serializers import Deserializer, Serializer
from ..utils import redact_text
from ..worker.cron import CronJob
from . import render
from .security import AuthMiddleware, Credentials, CSRFMiddleware, HostCheckMiddleware, csrf_token
from .throughput import Throughput, finished_total

PAGE_SIZE = 50
NAV = [("/", "Overview"), ("/supervisors", "Supervisors"), ("/jobs", "Jobs"), ("/failed", "Failed"), ("/cron", "Cron")]
OVERVIEW_REFRESH_S = 5
FLASH_COOKIE = "pool_flash"  # what an action did, shown once by the page it redirects to


class Dashboard:
    """The app's state: settings, the Redis client (made on first use), throughput samples, templates."""

    def __init__(
        self,
        redis_settings: RedisSettings,
        queues: Sequence[str],
        *,
        read_only: bool,
        cron_jobs: Sequence[CronJob],
        page_size: int,
        job_serializer: Serializer | None,
        job_deserializer: Deserializer | None,
    ) -> None:
        self.settings, self.queues = redis_settings, list(queues)
        self.read_only, self.cron_jobs, self.page_size = read_only, list(cron_jobs), page_size
        self.serializer, self.deserializer = job_serializer, job_deserializer
        self.redis_text = redis_settings.describe()  # never the password (RedisSettings.describe)
        self.throughput = {name: Throughput() for name in self.queues}
        self.templates = Environment(
            loader=PackageLoader("pool.web", "templates"), autoescape=select_autoescape(default=True)
        )
        self._pool: PoolRedis | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> PoolRedis:
        """The Redis client, told each queue's partition count as recorded in Redis (a GET per queue): a job's
        partition follows from it, and a requeue must agree with it."""
        async with self._lock:
            if self._pool is None:
                self._pool = await create_pool(
                    self.settings,
                    job_serializer=self.serializer,
                    job_deserializer=self.deserializer,
                    default_queue_name=self.queues[0],
                )
        self._pool.queue_partitions = await inspection.recorded_partitions(self._pool, self.queues)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    def page(self, request: Request, template: str, title: str, **context: Any) -> HTMLResponse:
        here = "/" + request.url.path[len(request.scope.get("root_path", "")) :].lstrip("/").split("/")[0]
        html = self.templates.get_template(template).render(
            title=title,
            nav=NAV,
            here="/jobs" if here == "/job" else here,
            base=request.scope.get("root_path", ""),
            redis=self.redis_text,
            read_only=self.read_only,
            csrf=csrf_token(request.scope),
            flash=_flash(request),
            **context,
        )
        response = HTMLResponse(html)
        if FLASH_COOKIE in request.cookies:  # shown once
            response.delete_cookie(FLASH_COOKIE, path=_cookie_path(request))
        return response

    def queue_of(self, request: Request) -> str:
        """The queue a page is about: ``?queue=``, one of the app's (another name is a 404), else the first."""
        name = request.query_params.get("queue") or self.queues[0]
        if name not in self.queues:
            raise LookupError(name)
        return name


def _dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def _not_found(request: Request, message: str) -> HTMLResponse:
    response = _dashboard(request).page(request, "message.html", "Not found", message=message)
    response.status_code = 404
    return response


async def overview(request: Request) -> Response:
    dashboard = _dashboard(request)
    redis = await dashboard.client()
    rows = []
    for name in dashboard.queues:
        counts = await inspection.queue_info(redis, name)
        supervisors, lines = await entries_of(redis, name), await worker_lines(redis, name)
        rate = dashboard.throughput[name].add(finished_total(supervisors, lines))
        partitions = redis.queue_partitions[name] if isinstance(redis.queue_partitions, dict) else 1
        rows.append({"name": name, "counts": counts, "rate": rate, "partitions": partitions})
    return dashboard.page(request, "overview.html", "Overview", queues=rows, refresh=OVERVIEW_REFRESH_S)


async def supervisors(request: Request) -> Response:
    dashboard = _dashboard(request)
    redis = await dashboard.client()
    queues = []
    for name in dashboard.queues:
        entries = [render.supervisor(e) for e in await entries_of(redis, name)]
        queues.append({"name": name, "entries": entries, "workers": await worker_lines(redis, name)})
    return dashboard.page(request, "supervisors.html", "Supervisors", queues=queues)


async def jobs(request: Request) -> Response:
    dashboard = _dashboard(request)
    try:
        queue = dashboard.queue_of(request)
    except LookupError:
        return _not_found(request, "no such queue on this dashboard")
    state = request.query_params.get("state", "ready")
    if state not in inspection.PAGE_STATES:
        return _not_found(request, f"no job state {state!r}: one of {', '.join(inspection.PAGE_STATES)}")
    cursor = request.query_params.get("cursor") or None
    redis = await dashboard.client()
    try:
        page = await inspection.jobs_page(redis, state, cursor, dashboard.page_size, queue)
    except ValueError:
        return _not_found(request, "this page cursor is not one the dashboard made")
    infos = await inspection.job_infos(redis, [r.job_id for r in page.rows], queue)
    return dashboard.page(
        request,
        "jobs.html",
        f"Jobs · {queue}",
        queue=queue,
        queues=dashboard.queues,
        states=inspection.PAGE_STATES,
        state=state,
        total=page.total,
        rows=[render.job_row(row, info) for row, info in zip(page.rows, infos, strict=True)],
        cursor=cursor,
        next_cursor=page.next_cursor,
        page_size=dashboard.page_size,
    )


async def job(request: Request) -> Response:
    dashboard = _dashboard(request)
    try:
        queue = dashboard.queue_of(request)
    except LookupError:
        return _not_found(request, "no such queue on this dashboard")
    job_id = request.query_params.get("id", "")  # as given: an id may start or end with spaces
    if not job_id.strip():
        return RedirectResponse(f"{request.scope.get('root_path', '')}/jobs?queue={queue}", status_code=303)
    detail = await inspection.job_detail(await dashboard.client(), job_id, queue)
    response = dashboard.page(
        request,
        "job.html",
        f"Job {job_id}",
        queue=queue,
        job_id=job_id,
        detail=detail,
        info=render.job_info(detail.info) if detail.info else None,
    )
    if detail.status == "not_found" and detail.failed is None:
        response.status_code = 404
    return response


async def failed(request: Request) -> Response:
    dashboard = _dashboard(request)
    try:
        queue = dashboard.queue_of(request)
    except LookupError:
        return _not_found(request, "no such queue on this dashboard")
    cursor = request.query_params.get("cursor") or None
    try:
        page = await inspection.failed_page(await dashboard.client(), cursor, dashboard.page_size, queue)
    except ValueError:
        return _not_found(request, "this page cursor is not one the dashboard made")
    return dashboard.page(
        request,
        "failed.html",
        f"Failed · {queue}",
        queue=queue,
        queues=dashboard.queues,
        total=page.total,
        records=[render.failed_record(r) for r in page.records],
        cursor=cursor,
        next_cursor=page.next_cursor,
        page_size=dashboard.page_size,
    )


async def cron(request: Request) -> Response:
    dashboard = _dashboard(request)
    redis = await dashboard.client()
    names = [c.name for c in dashboard.cron_jobs]
    queues = []
    for name in dashboard.queues:
        state = await inspection.cron_state(redis, names, name)
        leaders = [e["id"] for e in await entries_of(redis, name) if e.get("cron_leader") and not e.get("stale")]
        queues.append(
            {
                "name": name,
                "leader": render.leader(leaders, state.lock_ttl_ms),
                "jobs": [
                    render.cron_row(c, last) for c, last in zip(dashboard.cron_jobs, state.last_ticks_ms, strict=True)
                ],
            }
        )
    return dashboard.page(request, "cron.html", "Cron", queues=queues)


# --- actions: POST only, behind the CSRF check; refused in read-only mode ------------------------------------------


def _action_refused(request: Request) -> Response | None:
    dashboard = _dashboard(request)
    if dashboard.read_only:
        return Response("refused: the dashboard is read-only\n", status_code=403, media_type="text/plain")
    try:
        dashboard.queue_of(request)
    except LookupError:
        return _not_found(request, "no such queue on this dashboard")
    return None


def _cookie_path(request: Request) -> str:
    return (request.scope.get("root_path") or "") + "/"


def _back(request: Request, path: str, done: str) -> RedirectResponse:
    """Back to a page after an action, which says what was done once. The message travels in a cookie, not
    the URL: a link from elsewhere cannot make the dashboard show words of its choosing."""
    from urllib.parse import urlencode

    query = urlencode({"queue": _dashboard(request).queue_of(request)})
    response = RedirectResponse(f"{request.scope.get('root_path', '')}{path}?{query}", status_code=303)
    # percent-encoded: a job id may hold any character, a header only latin-1
    response.set_cookie(
        FLASH_COOKIE,
        _quote(done),
        max_age=60,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def abort_job(request: Request) -> Response:
    refused = _action_refused(request)
    if refused is not None:
        return refused
    dashboard = _dashboard(request)
    queue, job_id = dashboard.queue_of(request), request.query_params.get("id", "")
    aborted = await inspection.abort_job(await dashboard.client(), job_id, queue)
    done = f"job {job_id} aborted" if aborted else f"job {job_id}: asked to abort (not confirmed yet)"
    response = _back(request, "/job", done)
    response.headers["location"] += "&id=" + _quote(job_id)
    return response


async def requeue_failed(request: Request) -> Response:
    refused = _action_refused(request)
    if refused is not None:
        return refused
    dashboard = _dashboard(request)
    queue, job_id = dashboard.queue_of(request), request.query_params.get("id", "")
    try:
        requeued = await inspection.requeue_failed(await dashboard.client(), job_id, queue)
    except inspection.DeserializationError as exc:
        return _back(request, "/failed", f"job {job_id} not requeued: {exc}")
    return _back(request, "/failed", f"job {job_id} requeued" if requeued else f"no failed job {job_id}")


async def purge_failed(request: Request) -> Response:
    refused = _action_refused(request)
    if refused is not None:
        return refused
    dashboard = _dashboard(request)
    purged = await inspection.purge_failed(await dashboard.client(), dashboard.queue_of(request))
    return _back(request, "/failed", f"purged {purged} failed job{'' if purged == 1 else 's'}")


def _flash(request: Request) -> str | None:
    """The message of the action that redirected here (``_back``), if any."""
    from urllib.parse import unquote

    text = request.cookies.get(FLASH_COOKIE)
    return None if text is None else unquote(text)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def create_app(
    redis_settings: RedisSettings | None = None,
    queues: Sequence[str] = (DEFAULT_QUEUE_NAME,),
    *,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    read_only: bool = False,
    cron_jobs: Sequence[CronJob] = (),
    page_size: int = PAGE_SIZE,
    job_serializer: Serializer | None = None,
    job_deserializer: Deserializer | None = None,
) -> Starlette:
    """The dashboard of ``queues`` on the Redis of ``redis_settings``, as an ASGI app to serve or mount
    (``app.mount("/pool", create_app(...))``). ``token`` / ``basic_auth`` make every request authenticate (leave
    them out when the host application authenticates); ``allowed_hosts``: serve only requests whose Host header
    names one of them (``pool dashboard`` gives the loopback names when it serves without credentials: a
    defence against DNS rebinding); ``read_only`` draws and serves no action;
    ``cron_jobs`` (the settings' ``cron_jobs``) fill the cron page."""
    if isinstance(queues, str):
        queues = [queues]
    if not queues:
        raise ValueError("the dashboard needs at least one queue")
    for name in queues:
        validate_queue_name(name)
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    dashboard = Dashboard(
        redis_settings or RedisSettings(),
        queues,
        read_only=read_only,
        cron_jobs=cron_jobs,
        page_size=page_size,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await dashboard.close()

    routes = [
        Route("/", overview),
        Route("/supervisors", supervisors),
        Route("/jobs", jobs),
        Route("/job", job),
        Route("/failed", failed),
        Route("/cron", cron),
        Route("/job/abort", abort_job, methods=["POST"]),
        Route("/failed/requeue", requeue_failed, methods=["POST"]),
        Route("/failed/purge", purge_failed, methods=["POST"]),
    ]
    middleware = [Middleware(HostCheckMiddleware, allowed=tuple(allowed_hosts))] if allowed_hosts else []
    middleware += [
        Middleware(AuthMiddleware, credentials=Credentials(token, basic_auth)),
        Middleware(CSRFMiddleware),
    ]

    async def redis_unavailable(request: Request, exc: Exception) -> Response:
        """Redis down or refusing: a page saying so (503), not a traceback; no password in it."""
        secrets = [s for s in (dashboard.settings.password, dashboard.settings.sentinel_password) if s]
        message = redact_text(f"{type(exc).__name__}: {exc}", secrets)
        response = dashboard.page(request, "message.html", "Redis unavailable", message=message)
        response.status_code = 503
        return response

    handlers: dict[Any, Any] = {RedisError: redis_unavailable, OSError: redis_unavailable}
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers=handlers)
    app.state.dashboard = dashboard
    return app
