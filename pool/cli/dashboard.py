"""``pool dashboard app.WorkerSettings [--host H --port P]``: the web dashboard (pool/web), served by uvicorn.

Safe by default: it binds to 127.0.0.1; to bind anywhere else it needs a token or Basic credentials (a usage
error otherwise), given by flag or, kept out of ``ps``, by environment variable. The dashboard's packages are
the ``web`` extra: without them the command says how to install them.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from typing import Any

from ..redis.settings import RedisSettings
from ..storage.keys import DEFAULT_QUEUE_NAME, validate_queue_name
from .common import Failure, UsageError, load_settings, redis_settings_override

TOKEN_ENV = "POOL_DASHBOARD_TOKEN"
BASIC_AUTH_ENV = "POOL_DASHBOARD_BASIC_AUTH"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def add_command(settings_command: Any) -> None:
    sub = settings_command(
        "dashboard",
        "Serve the web dashboard of the queue (needs the web extra: pip install 'pool-queue[web]').",
        looks=True,
    )
    sub.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    sub.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    sub.add_argument("--token", help=f"require this token (Bearer, or as the Basic password); default ${TOKEN_ENV}")
    sub.add_argument(
        "--basic-auth", metavar="USER:PASSWORD", help=f"require these Basic credentials; default ${BASIC_AUTH_ENV}"
    )
    sub.add_argument("--read-only", action="store_true", help="show, never act: no abort, requeue or purge")
    sub.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="without credentials, requests must name a loopback host (127.0.0.1, localhost, ::1) or one of these",
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text}")
    return port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def credentials(args: argparse.Namespace) -> tuple[str | None, tuple[str, str] | None]:
    """The token and Basic credentials given (flags over environment); refused when binding beyond loopback
    without either."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    basic_text = args.basic_auth or os.environ.get(BASIC_AUTH_ENV) or None
    basic = None
    if basic_text is not None:
        user, sep, password = basic_text.partition(":")
        if not sep or not user or not password:
            raise UsageError("--basic-auth must be USER:PASSWORD, both non-empty")
        basic = (user, password)
    if token is None and basic is None and not is_loopback(args.host):
        raise UsageError(
            f"--host {args.host} is not a loopback address: give --token (or ${TOKEN_ENV}) or --basic-auth "
            f"USER:PASSWORD (or ${BASIC_AUTH_ENV}), or bind to {DEFAULT_HOST}"
        )
    return token, basic


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ..utils import set_process_title

    set_process_title(f"dashboard [{args.settings or args.queue}]")  # `ps` must not show --token or --redis
    if not args.settings and not args.queue:
        raise UsageError("give SETTINGS (a dotted path like 'app.WorkerSettings') or --queue NAME")
    token, basic = credentials(args)
    try:
        import uvicorn

        from ..web import create_app
        from ..web.security import LOOPBACK_NAMES
    except ImportError as exc:
        raise Failure(
            f"pool dashboard needs the web extra ({exc.name} is missing): pip install 'pool-queue[web]'"
        ) from None
    from ..worker.main import get_kwargs

    kwargs = get_kwargs(load_settings(args.settings)) if args.settings else {}
    settings = redis_settings_override(args.redis) or kwargs.get("redis_settings") or RedisSettings()
    queues = (
        [q.strip() for q in args.queue.split(",")] if args.queue else [kwargs.get("queue_name") or DEFAULT_QUEUE_NAME]
    )
    for name in queues:
        try:
            validate_queue_name(name)
        except ValueError as exc:
            raise UsageError(f"--queue: {exc}") from None
    # served without credentials (on loopback, then): only requests naming a loopback host, against DNS rebinding
    allowed = None if token or basic else (*LOOPBACK_NAMES, *args.allow_host)
    app = create_app(
        settings,
        queues,
        token=token,
        basic_auth=basic,
        allowed_hosts=allowed,
        read_only=args.read_only,
        cron_jobs=kwargs.get("cron_jobs") or (),
        job_serializer=kwargs.get("job_serializer"),
        job_deserializer=kwargs.get("job_deserializer"),
    )
    print(
        f"pool dashboard of {', '.join(queues)} on {settings.describe()}: http://{args.host}:{args.port}/", flush=True
    )
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn could not bind (it logged why, in one line): a failure, exit 1
        return 1
    return 0 if server.started else 1


COMMANDS = {"dashboard": cmd_dashboard}
