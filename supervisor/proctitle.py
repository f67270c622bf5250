"""Process titles (``pool: supervisor [app.WorkerSettings]``); they never contain a Redis password."""

from __future__ import annotations

from pool.utils import set_process_title


def set_title(title: str) -> None:
    set_process_title(title)
