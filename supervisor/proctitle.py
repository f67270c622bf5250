"""Process titles (``pool: supervisor [app.WorkerSettings]``); they never contain a Redis URL."""

from __future__ import annotations

from pool.utils import redact_url


def set_title(title: str) -> None:
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - setproctitle is a dependency
        return
    setproctitle.setproctitle(f"pool: {redact_url(title)}")
