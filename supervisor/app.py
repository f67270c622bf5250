"""Loading the user's settings so that a reload really loads new code.

The parent imports the settings (an import error is then reported once, before any fork) and remembers which
*project* modules that import brought in: modules whose file is outside the interpreter's prefixes (stdlib and
site-packages). On reload those modules are dropped from ``sys.modules`` and imported again, so children forked
afterwards run the code now on disk, helpers imported by the job module included. Third-party packages are never
re-imported (many C extensions cannot be), so upgrading a library still needs a restart, as with gunicorn.
"""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from typing import Any

from pool.utils import import_string
from pool.worker.crontab import InvalidCrontab


class AppLoadError(Exception):
    """The settings could not be imported; the message is one line for the user. ``usage``: the settings hold a
    mistake of the user's own writing (a bad crontab string), which ``pool start`` reports with exit 2."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def _library_roots() -> tuple[str, ...]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


def _is_project_module(module: Any) -> bool:
    path = getattr(module, "__file__", None)
    if not path:
        return False
    return not os.path.realpath(path).startswith(_library_roots())


@dataclass
class App:
    """The imported settings and the project modules that came with them."""

    path: str
    settings: Any = None
    modules: set[str] = field(default_factory=set)

    def load(self) -> Any:
        """Import (or re-import) the settings; raises AppLoadError with a one-line reason."""
        for name in self.modules:
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
        before = set(sys.modules)
        try:
            settings = import_string(self.path)
        except ImportError as exc:
            raise AppLoadError(f"cannot import settings {self.path!r}: {exc}") from None
        except InvalidCrontab as exc:
            raise AppLoadError(f"settings {self.path!r}: {exc}", usage=True) from None
        except Exception as exc:  # the app's own module raised while importing
            raise AppLoadError(f"importing settings {self.path!r} failed: {type(exc).__name__}: {exc}") from None
        finally:
            added = set(sys.modules) - before
        self.modules = {name for name in added if _is_project_module(sys.modules.get(name))}
        self.settings = settings
        return settings
