"""Small helpers shared by the client and the worker: time in ms, durations, settings import, redaction."""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import re
import time
import zoneinfo
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TypeVar
from urllib.parse import unquote

from .logs import flush_logs

T = TypeVar("T")

logger = logging.getLogger("pool.utils")


def now_ms() -> int:
    return int(time.time() * 1000)


TIMEZONE_ENV_VARS = ("POOL_TIMEZONE", "ARQ_TIMEZONE", "arq_timezone", "TIMEZONE", "timezone")  # first set wins


class Zone(zoneinfo.ZoneInfo):
    """A ``zoneinfo`` zone that also answers pytz's ``zone`` (its name), which arq's datetimes carry: code ported
    from arq that reads ``dt.tzinfo.zone`` keeps working, with zoneinfo's arithmetic."""

    @property
    def zone(self) -> str:
        return str(self.key)


@functools.lru_cache
def get_tz() -> tzinfo | None:
    """The zone the environment names for datetimes read back (enqueue, start and finish times), as arq reads
    it (``ARQ_TIMEZONE``, then ``TIMEZONE``; ``POOL_TIMEZONE`` first); None: UTC. Read once (cached)."""
    for name in TIMEZONE_ENV_VARS:
        zone = os.environ.get(name)
        if zone:
            try:
                return Zone(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                logger.warning("unknown timezone: %r", zone)
    return None


def ms_to_datetime(ms: int) -> datetime:
    tz = get_tz()
    return datetime.fromtimestamp(ms / 1000, tz=UTC if tz is None else tz)


def timestamp_ms() -> int:
    """arq's: now in ms, rounded (``now_ms`` truncates, a little cheaper)."""
    return round(time.time() * 1000)


def as_int(value: float) -> int:
    """arq's: round to the nearest int."""
    return round(value)


def to_unix_ms(value: datetime) -> int:
    """arq's: a datetime as epoch ms, rounded."""
    return round(value.timestamp() * 1000)


def datetime_to_ms(value: datetime) -> int:
    """Naive datetimes are taken as local time, as ``datetime.timestamp`` does (and arq does)."""
    return int(value.timestamp() * 1000)


def to_seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def to_ms(value: float | timedelta | None) -> int | None:
    seconds = to_seconds(value)
    return None if seconds is None else round(seconds * 1000)


def import_string(dotted_path: str) -> Any:
    """Import ``package.module.Attr`` (or ``package.module:Attr``); ImportError with a one-line reason if not,
    in arq's words (code ported from arq matches them)."""
    module_path, sep, attr = dotted_path.strip(" ").replace(":", ".").rpartition(".")
    if not sep or not module_path or not attr:
        raise ImportError(f"\"{dotted_path}\" doesn't look like a module path, such as 'app.WorkerSettings'")
    module = importlib.import_module(module_path)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f'Module "{module_path}" does not define a "{attr}" attribute') from None


@dataclass(frozen=True)
class UrlParts:
    """A URL cut into its parts, as written (nothing decoded): see :func:`split_url`."""

    scheme: str
    userinfo: str | None  # ``user:password`` (or a lone ``user``), None without an ``@``
    hostport: str
    path: str
    query: str

    @property
    def username(self) -> str | None:
        return None if self.userinfo is None else self.userinfo.partition(":")[0]

    @property
    def password(self) -> str | None:
        if self.userinfo is None or ":" not in self.userinfo:
            return None
        return self.userinfo.partition(":")[2]

    def host_and_port(self) -> tuple[str, int | None]:
        """``(host, port)``; ValueError (never quoting the URL) when the port is not a number in 1-65535."""
        return _host_and_port(self.hostport)

    def hosts_and_ports(self) -> list[tuple[str, int | None]]:
        """Each ``host[:port]`` of a comma-separated list (a Sentinel URL names several), as host_and_port."""
        return [_host_and_port(each) for each in self.hostport.split(",")]


_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*", re.I)
_NOT_A_URL = "not a URL like redis://[[user]:password@]host[:port][/db]"


def split_url(url: str) -> UrlParts:
    """Cut ``scheme://[userinfo@]host[:port][/path][?query]`` into parts, tolerating unencoded passwords.

    Passwords often hold ``/ @ : # ?`` written as they are, which a standard parser splits in the wrong place
    (and then shows a piece of the password as the host, port or path). The standard reading (the userinfo
    ends at the last ``@`` before the first ``/ ? #``) is kept when it gives a sound host, port and path;
    otherwise the userinfo runs to the URL's last ``@``. ValueError messages never contain the URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise ValueError(_NOT_A_URL)
    scheme = scheme.lower()
    standard = _split_rest(scheme, rest, _authority_end(rest))
    if _sound(standard):
        return standard
    return _split_rest(scheme, rest, len(rest))


def _authority_end(rest: str) -> int:
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    return min(ends, default=len(rest))


def _split_rest(scheme: str, rest: str, userinfo_ends_before: int) -> UrlParts:
    at = rest.rfind("@", 0, userinfo_ends_before)
    userinfo, after = (rest[:at], rest[at + 1 :]) if at >= 0 else (None, rest)
    path_at = min((i for i in (after.find("/"), after.find("?")) if i >= 0), default=len(after))
    hostport, tail = after[:path_at], after[path_at:]
    path, _, query = tail.partition("?")
    return UrlParts(scheme, userinfo, hostport, path, query)


def _host_and_port(hostport: str) -> tuple[str, int | None]:
    host, port = _host_and_port_text(hostport)
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("the port must be a number from 1 to 65535")
    return host, int(port)


def _host_and_port_text(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # an IPv6 address: [::1]:6379
        host, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise ValueError("an IPv6 address lacks its closing ']', as in [::1]:6379")
        return host, after[1:] if after.startswith(":") else after
    if hostport.count(":") > 1:
        raise ValueError("an IPv6 address must be in brackets, as in [::1]:6379")
    host, _, port = hostport.partition(":")
    return host, port


def _sound(parts: UrlParts) -> bool:
    """Whether a reading looks like a real URL: a numeric port, no stray ``@``/``#``, a numeric db path."""
    if "#" in parts.hostport + parts.path or "@" in parts.hostport + parts.path:
        return False
    try:
        parts.hosts_and_ports()
    except ValueError:
        return False
    if parts.scheme in ("redis", "rediss"):
        db = parts.path.strip("/")
    elif parts.scheme in ("redis+sentinel", "rediss+sentinel"):  # /service_name[/db]
        db = parts.path.strip("/").partition("/")[2]
    else:
        return True
    return db.isdigit() or not db


def redact_url(url: str) -> str:
    """The URL as it may be shown: ``redis://user:***@host:6379/0``. Parsed, so a password holding ``/``, ``@``
    or ``:`` is hidden whole; a URL that cannot be parsed shows as its scheme only. A lone ``user@`` is hidden
    too (people put passwords there), as are ``password=`` values in the query."""
    try:
        parts = split_url(url)
    except ValueError:
        return "<not a URL>"
    try:
        parts.hosts_and_ports()
    except ValueError:
        return f"{parts.scheme}://***"
    auth = ""
    if parts.userinfo is not None:
        auth = f"{parts.username}:***@" if parts.password is not None else "***@"
    query = "&".join(_redact_query_item(item) for item in parts.query.split("&")) if parts.query else ""
    return f"{parts.scheme}://{auth}{parts.hostport}{parts.path}{'?' + query if query else ''}"


def _redact_query_item(item: str) -> str:
    name, sep, _ = item.partition("=")
    return f"{name}=***" if sep and "password" in name.lower() else item


_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"]*", re.I)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` (an error message, a title) with each URL in it redacted, and each of ``secrets`` masked.

    A URL in free text ends at a space or a quote; pass the passwords in use as ``secrets`` to mask them
    wherever they appear, however the text was built."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def url_secrets(url: str | None) -> list[str]:
    """The passwords (and a lone user, which may be one) of ``url``, as written and decoded: for redact_text.
    Those in the query too (``sentinel_password=``)."""
    if not url:
        return []
    try:
        parts = split_url(url)
    except ValueError:
        return [url]  # unparseable: mask it whole wherever it shows
    found = [parts.password if parts.password is not None else parts.userinfo]
    for item in parts.query.split("&") if parts.query else ():
        name, _, value = item.partition("=")
        if "password" in name.lower():
            found.append(value)
    return [s for secret in found if secret for s in (secret, unquote(secret))]


def set_process_title(title: str) -> None:
    """Show ``pool: <title>`` in ``ps`` instead of the command line, which may hold a Redis URL; any URL in
    the title itself is redacted."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - setproctitle is a dependency
        return
    setproctitle.setproctitle(f"pool: {redact_text(title)}")


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 job``, ``2 jobs``, ``0 jobs``."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"


def truncate(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def args_to_string(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """A job's arguments as its log line shows them (arq's): ``1, 2, d=4``, keyword arguments sorted, truncated."""
    parts = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in sorted(kwargs.items())]
    return truncate(", ".join(parts))


async def poll(step: float = 0.5) -> AsyncGenerator[float, None]:
    """arq's: yield the seconds since the start every ``step`` seconds (counting the time the caller took)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        before = loop.time()
        yield before - start
        await asyncio.sleep(max(0.0, step - (loop.time() - before)))


def run_on_best_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a fresh event loop: uvloop's when it is installed (its I/O is faster), else
    asyncio's. Pending log lines are written at the end: the CLI's handler writes a loop turn's lines at its end."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but keep working without it
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro)
    finally:
        flush_logs()


def caused_by(exc: BaseException, test: Callable[[BaseException], bool]) -> bool:
    """True when the error, or one it was raised from or while handling, passes ``test``: redis-py and asyncio wrap
    the error that tells what went wrong (a refused password, a failed certificate check) in their own."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if test(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
