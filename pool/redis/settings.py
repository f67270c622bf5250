"""How to reach Redis: ``RedisSettings`` (arq's fields), the URL forms it is built from, and its TLS options.

The settings alone, with no client: the storage layer's sync facade and the supervisor connect with them too.
"""

from __future__ import annotations

import math
import ssl as ssl_module
from dataclasses import Field, dataclass, field, fields
from typing import Any
from urllib.parse import unquote

from ..utils import UrlParts, split_url


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
    # Redis Cluster: host (and port) or a list of (host, port) are some of its nodes, from which the client learns
    # the rest (see docs/cluster.md)
    cluster: bool = False

    def __post_init__(self) -> None:
        """Refuse values no connection could use, at construction: one line naming the field."""
        if self.sentinel and self.cluster:
            raise ValueError("sentinel=True and cluster=True exclude each other: a cluster fails over by itself")
        if isinstance(self.host, list) and not (self.sentinel or self.cluster):
            raise ValueError(
                "a list of hosts is a list of Sentinels or of cluster nodes: set sentinel=True or cluster=True"
            )
        if self.sentinel and isinstance(self.host, list) and not self.host:
            raise ValueError("sentinel=True needs at least one Sentinel address in host")
        if self.cluster and isinstance(self.host, list) and not self.host:
            raise ValueError("cluster=True needs at least one node's address in host")
        if self.cluster and self.database != 0:
            raise ValueError(f"a Redis Cluster has database 0 only, got database={self.database}")
        if self.cluster and self.unix_socket_path:
            raise ValueError("cluster=True connects over TCP: unix_socket_path does not apply")
        if isinstance(self.wait_replicas, bool) or not isinstance(self.wait_replicas, int) or self.wait_replicas < 0:
            raise ValueError(f"wait_replicas must be a whole number, 0 or more, got {self.wait_replicas!r}")
        for name in ("wait_timeout", "sentinel_check_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a number of seconds above 0, got {value!r}")

    @classmethod
    def from_dsn(cls, dsn: str) -> RedisSettings:
        """Settings from a URL, in one of these forms:

        - ``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS;
        - ``unix://[user:password@]/path?db=N``;
        - ``redis+sentinel://[user:password@]host[:port][,host2[:port2],...]/service_name[/db]``, and
          ``rediss+sentinel://`` for TLS to the master and (unless ``sentinel_ssl=false``) to the Sentinels:
          the hosts are Sentinels (port 26379 unless given); user and password are the master's;
        - ``redis+cluster://[user:password@]host[:port][,host2[:port2],...][/0]``, ``rediss+cluster://`` for TLS:
          some nodes of a Redis Cluster (port 6379 unless given), from which the client learns the others.

        Query options, percent-decoded (a ``+`` stays a ``+``): TLS as redis-py reads them, ``ssl_cert_reqs``
        (required, optional, none), ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``
        (true/false); durability, ``wait_replicas`` (0 or more) and ``wait_timeout`` (seconds); for Sentinel URLs
        only, ``sentinel_username``, ``sentinel_password`` and ``sentinel_ssl`` (true/false). Other options are
        ignored, as arq does. ValueError messages never quote the URL."""
        try:
            parts = split_url(dsn)
        except ValueError:
            raise ValueError(f"not a Redis URL: {_SCHEMES_ACCEPTED}") from None
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"invalid Redis URL scheme {parts.scheme!r}: {_SCHEMES_ACCEPTED}")
        query = _query(parts.query)
        sentinel = parts.scheme.endswith("+sentinel")
        if parts.scheme == "unix":
            where = _unix_location(parts, query)
        elif sentinel:
            where = _sentinel_location(parts)
        elif parts.scheme.endswith("+cluster"):
            where = _cluster_location(parts)
        else:
            where = _plain_location(parts)
        return cls(
            ssl=parts.scheme.startswith("rediss"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **where,
            **_tls_query_options(query),
            **_wait_query_options(query),
            **_sentinel_query_options(query, sentinel),
        )

    def __repr__(self) -> str:
        """arq's fields, then pool's that differ from their default (as ``asdict`` gives them); passwords
        masked."""
        shown = ", ".join(
            f"{f.name}={'***' if f.name in _SECRET_FIELDS and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"RedisSettings({shown})"

    def describe(self) -> str:
        """Where this points, for logs and process titles, as a URL of the form from_dsn reads: never includes a
        password (neither ``password`` nor ``sentinel_password``) nor the query's options."""
        if self.unix_socket_path:
            return f"unix://{self.unix_socket_path}?db={self.database}"
        scheme = "rediss" if self.ssl else "redis"
        user = f"{self.username}:***@" if self.username else (":***@" if self.password else "")
        if self.sentinel:
            addresses = self.host if isinstance(self.host, list) else [(self.host, self.port)]
            hosts = ",".join(_address(host, port) for host, port in addresses)
            return f"{scheme}+sentinel://{user}{hosts}/{self.sentinel_master}/{self.database}"
        if self.cluster:
            addresses = self.host if isinstance(self.host, list) else [(self.host, self.port)]
            hosts = ",".join(_address(host, port) for host, port in addresses)
            return f"{scheme}+cluster://{user}{hosts}/0"
        return f"{scheme}://{user}{_address(str(self.host), self.port)}/{self.database}"


class _FieldsShown:
    """``RedisSettings.__dataclass_fields__``: every field for the class (the dataclass machinery, ``fields(cls)``),
    but for an instance arq's fields and only those of pool's own that differ from their default. So
    ``dataclasses.asdict(RedisSettings())`` and ``repr`` are arq's (code ported from arq compares them), a pool
    setting in use still shows, and ``dataclasses.replace`` keeps it. Equality and hashing compare every field."""

    def __init__(self, every: dict[str, Field[Any]], last_of_arqs: str) -> None:
        self.every = every
        names = list(every)
        self.arqs = frozenset(names[: names.index(last_of_arqs) + 1])

    def __get__(self, settings: RedisSettings | None, owner: type | None = None) -> dict[str, Field[Any]]:
        if settings is None:
            return self.every
        return {
            name: f
            for name, f in self.every.items()
            if name in self.arqs or getattr(settings, name) != f.default  # pool's fields all have plain defaults
        }


# host … retry are arq 0.26's fields, in its order; pool's own follow (setattr: the attribute is typed as a dict)
setattr(RedisSettings, "__dataclass_fields__", _FieldsShown(RedisSettings.__dataclass_fields__, "retry"))  # noqa: B010

_SECRET_FIELDS = frozenset({"password", "sentinel_password"})
_SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster", "unix")
_SCHEMES_ACCEPTED = (
    "use redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster://, rediss+cluster:// or unix://"
)
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


def _address(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _query(query: str) -> dict[str, str]:
    """``a=1&b=2`` as a dict, values percent-decoded but a ``+`` kept (passwords hold them); the last one wins."""
    pairs = (item.partition("=") for item in query.split("&") if item)
    return {unquote(name): unquote(value) for name, _, value in pairs}


def _database(text: str, example: str) -> int:
    if not text.isdigit():
        raise ValueError(f"the database must be a number, as in {example}")
    return int(text)


def _plain_location(parts: UrlParts) -> dict[str, Any]:
    if "," in parts.hostport:
        raise ValueError(
            "several hosts are Sentinels or cluster nodes: use redis+sentinel://host1,host2/service_name or "
            "redis+cluster://host1,host2"
        )
    host, port = parts.host_and_port()
    return {
        "host": host.lower() or "localhost",
        "port": port or DEFAULT_PORT,
        "database": _database(parts.path.strip("/") or "0", "redis://host:6379/0"),
    }


def _unix_location(parts: UrlParts, query: dict[str, str]) -> dict[str, Any]:
    return {"unix_socket_path": parts.path, "database": _database(query.get("db", "0"), "unix:///path/redis.sock?db=0")}


def _sentinel_location(parts: UrlParts) -> dict[str, Any]:
    """``host[:port],.../service_name[/db]``: the Sentinels, the name they know the master by, the database."""
    addresses = parts.hosts_and_ports()
    if any(not host for host, _ in addresses):
        raise ValueError("a Sentinel URL names each Sentinel's host: redis+sentinel://host1[:port],host2/service_name")
    service, _, db_text = parts.path.strip("/").partition("/")
    if not service:
        raise ValueError("a Sentinel URL names the master's service after the hosts: redis+sentinel://host/mymaster")
    return {
        "host": [(host.lower(), port or DEFAULT_SENTINEL_PORT) for host, port in addresses],
        "sentinel": True,
        "sentinel_master": unquote(service),
        "database": _database(db_text or "0", "redis+sentinel://host/mymaster/0"),
    }


def _cluster_location(parts: UrlParts) -> dict[str, Any]:
    """``host[:port],...[/0]``: some nodes of the cluster (the client discovers the rest)."""
    addresses = parts.hosts_and_ports()
    if any(not host for host, _ in addresses):
        raise ValueError("a cluster URL names each node's host: redis+cluster://host1[:port],host2[:port]")
    db_text = parts.path.strip("/") or "0"
    if db_text != "0":
        raise ValueError("a Redis Cluster has database 0 only: redis+cluster://host:6379/0")
    return {"host": [(host.lower(), port or DEFAULT_PORT) for host, port in addresses], "cluster": True}


def _flag(name: str, text: str) -> bool:
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false")


def _tls_query_options(query: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {name: query[name] for name in _TLS_PATHS if name in query}
    if "ssl_cert_reqs" in query:
        if query["ssl_cert_reqs"] not in {"required", "optional", "none"}:
            raise ValueError(f"invalid ssl_cert_reqs {query['ssl_cert_reqs']!r}: use required, optional or none")
        options["ssl_cert_reqs"] = query["ssl_cert_reqs"]
    if "ssl_check_hostname" in query:
        options["ssl_check_hostname"] = _flag("ssl_check_hostname", query["ssl_check_hostname"])
    return options


_TLS_PATHS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def _wait_query_options(query: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "wait_replicas" in query:
        if not query["wait_replicas"].isdigit():
            raise ValueError("wait_replicas must be a whole number, 0 or more")
        options["wait_replicas"] = int(query["wait_replicas"])
    if "wait_timeout" in query:
        try:
            options["wait_timeout"] = float(query["wait_timeout"])
        except ValueError:
            raise ValueError("wait_timeout must be a number of seconds above 0") from None
    return options


def _sentinel_query_options(query: dict[str, str], sentinel: bool) -> dict[str, Any]:
    given = [name for name in ("sentinel_username", "sentinel_password", "sentinel_ssl") if name in query]
    if given and not sentinel:
        raise ValueError(f"{given[0]} applies to Sentinel URLs only (redis+sentinel://, rediss+sentinel://)")
    options: dict[str, Any] = {name: query[name] or None for name in given if name != "sentinel_ssl"}
    if "sentinel_ssl" in query:
        options["sentinel_ssl"] = _flag("sentinel_ssl", query["sentinel_ssl"])
    return options


def tls_options(settings: RedisSettings) -> dict[str, Any]:
    """redis-py's ``ssl_*`` keyword arguments for the settings' TLS options (``ssl=True`` not included)."""
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


def ssl_options(settings: RedisSettings) -> dict[str, Any]:
    """tls_options for a connection to Redis itself (the master): none without ``ssl``."""
    return tls_options(settings) if settings.ssl else {}
