"""The web dashboard (the ``web`` extra): ``create_app(redis_settings, queues=[...])`` is a Starlette app to
mount in an ASGI application; ``pool dashboard app.WorkerSettings`` serves it with uvicorn.

Importing this package needs starlette and jinja2 (``pip install 'pool-queue[web]'``); nothing else of pool
imports it."""

from .app import create_app

__all__ = ["create_app"]
