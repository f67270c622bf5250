"""arq's command line, ``pool.cli.cli`` (``arq.cli.cli``): a click command taking arq's arguments.

For code that calls arq's ``cli`` (an entry point of its own, tests with click's CliRunner). The ``pool`` command
(commands.py) takes the same flags under ``pool worker``; this one is not installed as a console script, and
click is imported only when ``pool.cli.cli`` is first used.

``--watch`` reloads as arq's does: the worker is stopped and started again in this process, without re-importing
the code; ``pool worker --watch`` restarts a worker process instead, so code changes take effect.
"""

from __future__ import annotations

import asyncio
import logging.config
import sys
from typing import Any

import click

from ..logs import default_log_config
from ..utils import import_string
from ..version import VERSION
from ..worker.main import check_health, create_worker, run_worker
from .common import Failure, UsageError, load_settings

burst_help = "Batch mode: exit once no jobs are found in any queue."
health_check_help = "Health Check: run a health check and exit."
watch_help = "Watch a directory and reload the worker upon changes."
verbose_help = "Enable verbose output."
logdict_help = "Import path for a dictionary in logdict form, to configure pool's own logging."


@click.command("arq")
@click.version_option(VERSION, "-V", "--version", prog_name="pool")
@click.argument("worker-settings", type=str, required=True)
@click.option("--burst/--no-burst", default=None, help=burst_help)
@click.option("--check", is_flag=True, help=health_check_help)
@click.option("--watch", type=click.Path(exists=True, dir_okay=True, file_okay=False), help=watch_help)
@click.option("-v", "--verbose", is_flag=True, help=verbose_help)
@click.option("--custom-log-dict", type=str, help=logdict_help)
def cli(
    *, worker_settings: str, burst: bool | None, check: bool, watch: str | None, verbose: bool, custom_log_dict: str
) -> None:
    """
    Job queues in python with asyncio and redis.

    CLI to run the pool worker (arq's command line).
    """
    try:
        settings = load_settings(worker_settings)
        log_config = load_log_config(custom_log_dict) if custom_log_dict else default_log_config(verbose)
    except (Failure, UsageError) as exc:
        raise click.UsageError(str(exc)) from None
    logging.config.dictConfig(log_config)
    if check:
        sys.exit(check_health(settings))
    kwargs = {} if burst is None else {"burst": burst}
    if watch:
        asyncio.run(watch_reload(watch, settings, **kwargs))
    else:
        run_worker(settings, **kwargs)


def load_log_config(path: str) -> dict[str, Any]:
    """``--custom-log-dict``: the dictionary at a dotted path, for ``logging.config.dictConfig``."""
    try:
        config = import_string(path)
    except ImportError as exc:
        raise Failure(f"--custom-log-dict: cannot import {path!r}: {exc}") from None
    if not isinstance(config, dict):
        raise Failure(f"--custom-log-dict: {path!r} is a {type(config).__name__}, not a dict")
    return config


async def watch_reload(path: str, settings: Any, **kwargs: Any) -> None:
    """Run the worker; on each change under ``path`` stop it (its jobs handed back) and start it again. Ends when
    the worker stops by itself (a signal, or a burst run done)."""
    from watchfiles import awatch

    worker = create_worker(settings, **kwargs)
    stopped = asyncio.Event()
    reloading = False

    def start() -> asyncio.Task[None]:
        task = asyncio.create_task(worker.main())
        task.add_done_callback(lambda _: None if reloading else stopped.set())
        return task

    run = start()
    try:
        async for _ in awatch(path, stop_event=stopped):
            print("\nfiles changed, reloading pool worker...")
            reloading = True
            worker.request_stop(force=True)
            await run
            reloading = False
            run = start()
    finally:
        worker.request_stop()
        await run
