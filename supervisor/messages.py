"""What a child tells its parent, one JSON object per line on a pipe.

``{"t": "ready"}`` once its worker serves; ``{"t": "hb", ...counters}`` every heartbeat, with ``"m"``: the
worker's metrics totals (pool/worker/metrics.py) under ``pool start --metrics``. The heartbeat is sent by a task
on the child's event loop, so a heartbeat proves the loop turns.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

READY = "ready"
HEARTBEAT = "hb"


def send(fd: int, kind: str, **fields: Any) -> None:
    """Best effort: a full pipe (the parent is busy) drops this message; the next heartbeat carries on."""
    data = (json.dumps({"t": kind, **fields}, separators=(",", ":")) + "\n").encode()
    with contextlib.suppress(BlockingIOError, BrokenPipeError):
        os.write(fd, data)


class LineReader:
    """Splits what arrives on a non-blocking pipe into messages."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """(messages, closed): closed when the child's end is gone."""
        chunks = []
        closed = False
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            chunks.append(chunk)
        self._buffer += b"".join(chunks)
        *lines, self._buffer = self._buffer.split(b"\n")
        messages = []
        for line in lines:
            try:
                messages.append(json.loads(line))
            except ValueError:
                continue
        return messages, closed
