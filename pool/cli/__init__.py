"""The ``pool`` command, the top layer: commands.py (the entry point and the worker/check/health commands),
queue.py (queue and failed-job commands), common.py (errors and settings loading every command shares). The
supervisor's commands join at run time, imported by name. arq_cli.py is arq's click command line (``cli``).

``main`` and ``run`` are importable from here: the console script is ``pool.cli:main``. ``cli`` (arq's
``arq.cli.cli``) is imported on first use, so the ``pool`` command never imports click.
"""

from typing import Any

from .commands import main, run

__all__ = ["cli", "main", "run"]


def __getattr__(name: str) -> Any:
    if name == "cli":
        from .arq_cli import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
