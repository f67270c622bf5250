"""What redis-py's ``Sentinel`` needs from ``RedisSettings``: the Sentinels' addresses, and how to connect to them.

A Sentinel set involves two kinds of connection with their own credentials and TLS: to the Sentinels (asked where
the master is) and to the master. ``RedisSettings`` keeps them apart (``sentinel_username``/``sentinel_password``/
``sentinel_ssl`` against ``username``/``password``/``ssl``); these helpers turn the Sentinels' half into redis-py's
arguments, once for the sync client (pool/storage/sync.py) and the async one alike. The master's half is the usual
``username``, ``password``, ``ssl`` with ``ssl_options``, passed to ``Sentinel.master_for``.

Usage, the same with ``redis.asyncio.sentinel.Sentinel``::

    sentinels = Sentinel(
        sentinel_addresses(settings),
        sentinel_kwargs={**sentinel_kwargs(settings), "socket_connect_timeout": 1, "socket_timeout": 1},
    )
    master = sentinels.master_for(settings.sentinel_master, db=settings.database, username=settings.username,
                                  password=settings.password, ssl=settings.ssl, **ssl_options(settings))

Given ``sentinel_kwargs``, redis-py no longer copies the ``socket_*`` timeouts of the master's connections to the
Sentinels' (it does only when ``sentinel_kwargs`` is None): the caller adds its own, and its own ``retry``.
"""

from __future__ import annotations

from typing import Any

from .settings import RedisSettings, tls_options


def sentinel_addresses(settings: RedisSettings) -> list[tuple[str, int]]:
    """The Sentinels: ``host`` as a list of ``(host, port)``, or arq's single ``host``/``port`` pair."""
    if isinstance(settings.host, list):
        return list(settings.host)
    return [(settings.host, settings.port)]


def sentinel_tls(settings: RedisSettings) -> bool:
    """Whether the Sentinels are reached over TLS: ``sentinel_ssl``, or when it is None, as the master (``ssl``)."""
    return settings.ssl if settings.sentinel_ssl is None else settings.sentinel_ssl


def sentinel_kwargs(settings: RedisSettings) -> dict[str, Any]:
    """The keyword arguments of a connection to a Sentinel (redis-py's ``sentinel_kwargs``), less timeouts and
    retries: the Sentinels' own username and password, and TLS with the same certificate options as the master's
    (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``, ``ssl_check_hostname``)."""
    kwargs: dict[str, Any] = {"username": settings.sentinel_username, "password": settings.sentinel_password}
    if sentinel_tls(settings):
        kwargs.update(ssl=True, **tls_options(settings))
    return kwargs
