"""How to reach Redis: ``RedisSettings`` (arq's fields), the URL forms it is built from, and its TLS options.

The settings alone, with no client: the storage layer's sync facade and the supervisor connect with them too.
"""

from __future__ import annotations

import ssl as ssl_module
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs, unquote

from ..utils import split_url


@dataclass
class RedisSettings:
    """How to reach Redis. Field names and defaults follow arq's ``RedisSettings``."""

    host: str | list[tuple[str, int]] = "localhost"
    port: int = 6379
    unix_socket_path: str | None = None
    database: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_ca_data: str | None = None
    ssl_check_hostname: bool = False
    conn_timeout: float = 1
    conn_retries: int = 5
    conn_retry_delay: float = 1
    max_connections: int | None = None
    sentinel: bool = False
    sentinel_master: str = "mymaster"
    retry_on_timeout: bool = False
    retry_on_error: list[type[Exception]] | None = None
    retry: Any = None
    # Beyond arq (after arq's fields, which keep their order): the Sentinels' own credentials and TLS
    # (sentinel_ssl None: TLS to the Sentinels as to the master)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    sentinel_ssl: bool | None = None
    # How often a process asks the Sentinels where the master is, between their +switch-master messages
    sentinel_check_interval: float = 1.0
    # Durability (off by default): after an enqueue, a job's start and its result, wait up to wait_timeout
    # seconds for this many replicas to confirm the write (Redis's WAIT); see docs/sentinel.md
    wait_replicas: int = 0
    wait_timeout: float = 1.0

    @classmethod
    def from_dsn(cls, dsn: str) -> RedisSettings:
        """``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS, ``unix:///path?db=N``.

        TLS options may ride in the query, as redis-py reads them: ``ssl_cert_reqs`` (required, optional, none),
        ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname`` (true/false)."""
        try:
            parts = split_url(dsn)
        except ValueError:
            raise ValueError("not a Redis URL: use redis://, rediss:// or unix://") from None
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(f"invalid Redis URL scheme {parts.scheme!r}: use redis://, rediss:// or unix://")
        host, port = parts.host_and_port()
        query = parse_qs(parts.query)
        db_text = query.get("db", ["0"])[0] if parts.scheme == "unix" else parts.path.strip("/") or "0"
        if not db_text.isdigit():
            raise ValueError("the database must be a number, as in redis://host:6379/0")
        return cls(
            host=host.lower() or "localhost",
            port=port or 6379,
            ssl=parts.scheme == "rediss",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            database=int(db_text),
            unix_socket_path=parts.path if parts.scheme == "unix" else None,
            **_tls_query_options(query),
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name in _SECRET_FIELDS and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"RedisSettings({shown})"

    def describe(self) -> str:
        """Where this points, for logs and process titles: never includes the password."""
        if self.unix_socket_path:
            return f"unix://{self.unix_socket_path}?db={self.database}"
        scheme = "rediss" if self.ssl else "redis"
        user = f"{self.username}:***@" if self.username else (":***@" if self.password else "")
        return f"{scheme}://{user}{self.host}:{self.port}/{self.database}"


_SECRET_FIELDS = frozenset({"password", "sentinel_password"})


def _tls_query_options(query: dict[str, list[str]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if name in query:
            options[name] = query[name][0]
    if options.get("ssl_cert_reqs", "required") not in {"required", "optional", "none"}:
        raise ValueError(f"invalid ssl_cert_reqs {options['ssl_cert_reqs']!r}: use required, optional or none")
    if "ssl_check_hostname" in query:
        options["ssl_check_hostname"] = query["ssl_check_hostname"][0].lower() in {"1", "true", "yes"}
    return options


def ssl_options(settings: RedisSettings) -> dict[str, Any]:
    if not settings.ssl:
        return {}
    cert_reqs = {"required": ssl_module.CERT_REQUIRED, "optional": ssl_module.CERT_OPTIONAL}.get(
        settings.ssl_cert_reqs, ssl_module.CERT_NONE
    )
    return {
        "ssl_keyfile": settings.ssl_keyfile,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_cert_reqs": cert_reqs,
        "ssl_ca_certs": settings.ssl_ca_certs,
        "ssl_ca_data": settings.ssl_ca_data,
        "ssl_check_hostname": settings.ssl_check_hostname,
    }
