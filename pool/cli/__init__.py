"""The ``pool`` command, the top layer: commands.py (the entry point and the worker/check/health commands),
queue.py (queue and failed-job commands), common.py (errors and settings loading every command shares). The
supervisor's commands join at run time, imported by name.

``main`` and ``run`` are importable from here: the console script is ``pool.cli:main``.
"""

from .commands import main, run

__all__ = ["main", "run"]
