"""Sentinel URLs (``redis+sentinel://``, ``rediss+sentinel://``), the durability options, and the settings' checks.

The form is the one prefect-redis, docket and redisvl read:
``redis+sentinel://[user:password@]host[:port][,host2[:port2],...]/service_name[/db][?options]``. Parsing, errors
and redaction need no Redis; the CLI is run for real; the supervisor's sync client is pointed at Sentinel ports
that refuse or never answer, to show it fails fast. tests/test_sentinel_sync.py runs it against a real Sentinel set.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from pool import RedisSettings, utils
from pool.redis.sentinel_config import sentinel_addresses, sentinel_kwargs, sentinel_tls
from pool.storage.sync import SyncQueue
from tests.helpers import wait_for_sync
from tests.redis_server import free_port
from tests.supervisor_utils import Supervisor, supervisors
from tests.test_cli import SETTINGS, assert_one_line_error, pool_env, run_pool
from tests.test_secret_redaction import assert_never_shown

PASSWORD = "p@ss/w0rd"  # unencoded, as people write them
SENTINEL_PASSWORD = "Zq9+Kx7/Vw2"

# url -> the fields it must give (the rest keep their defaults)
FORMS: dict[str, dict[str, Any]] = {
    "redis+sentinel://127.0.0.1/mymaster": {
        "host": [("127.0.0.1", 26379)],
        "sentinel": True,
        "sentinel_master": "mymaster",
        "database": 0,
        "ssl": False,
    },
    "redis+sentinel://a:26380,B:26381,c/svc/3": {
        "host": [("a", 26380), ("b", 26381), ("c", 26379)],
        "sentinel_master": "svc",
        "database": 3,
    },
    f"redis+sentinel://:{PASSWORD}@h1,h2/mymaster/1": {"password": PASSWORD, "username": None, "database": 1},
    "redis+sentinel://alice:pw@h1/mymaster": {"username": "alice", "password": "pw"},
    "redis+sentinel://[::1]:26390,[fe80::2]/my%20master/": {
        "host": [("::1", 26390), ("fe80::2", 26379)],
        "sentinel_master": "my master",
        "database": 0,
    },
    "rediss+sentinel://h/mymaster": {"ssl": True, "sentinel_ssl": None},
    "rediss+sentinel://h/mymaster?sentinel_ssl=false": {"ssl": True, "sentinel_ssl": False},
    "redis+sentinel://h/mymaster?sentinel_ssl=true": {"ssl": False, "sentinel_ssl": True},
    "redis+sentinel://h/mymaster?sentinel_username=sen&sentinel_password=Zq9%2BKx7%2FVw2": {
        "sentinel_username": "sen",
        "sentinel_password": SENTINEL_PASSWORD,
        "password": None,
    },
    "redis+sentinel://h/mymaster?sentinel_password=a+b": {"sentinel_password": "a+b"},  # a + is not a space
    "rediss+sentinel://h/m?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem"
    "&ssl_check_hostname=true": {
        "ssl_cert_reqs": "none",
        "ssl_ca_certs": "/ca.pem",
        "ssl_certfile": "/c.pem",
        "ssl_keyfile": "/k.pem",
        "ssl_check_hostname": True,
    },
    "redis+sentinel://h/mymaster/2?wait_replicas=1&wait_timeout=0.25": {"wait_replicas": 1, "wait_timeout": 0.25},
    "redis://h:7000/4?wait_replicas=2&wait_timeout=3": {
        "host": "h",
        "port": 7000,
        "database": 4,
        "sentinel": False,
        "wait_replicas": 2,
        "wait_timeout": 3.0,
    },
    "rediss://h/0?wait_replicas=0": {"ssl": True, "wait_replicas": 0},
    "redis://[::1]:7001/0": {"host": "::1", "port": 7001},
}


@pytest.mark.parametrize("url", list(FORMS))
def test_each_url_form_gives_its_settings(url: str) -> None:
    settings = RedisSettings.from_dsn(url)
    for name, expected in FORMS[url].items():
        assert getattr(settings, name) == expected, name


# url -> a fragment of its one-line error
BAD: dict[str, str] = {
    "redis+sentinel://h1,h2": "names the master's service",
    f"redis+sentinel://:{PASSWORD}@h1,h2/": "names the master's service",
    f"redis+sentinel://:{PASSWORD}@h1:notaport/mymaster": "port must be a number",
    f"redis+sentinel://:{PASSWORD}@h1,h2:99999/mymaster": "port must be a number",
    f"redis+sentinel://:{PASSWORD}@h1/mymaster/zero": "database must be a number",
    "redis+sentinel://h1/mymaster/0/extra": "database must be a number",
    "redis+sentinel://h1,,h2/mymaster": "each Sentinel's host",
    "redis+sentinel://::1/mymaster": "IPv6 address must be in brackets",
    "redis+sentinel://[::1/mymaster": "closing ']'",
    f"redis://:{PASSWORD}@h1,h2/0": "redis+sentinel://",
    "redis://h/0?wait_replicas=-1": "wait_replicas must be a whole number",
    "redis://h/0?wait_replicas=1.5": "wait_replicas must be a whole number",
    "redis+sentinel://h/m?wait_timeout=0": "wait_timeout must be a number of seconds above 0",
    "redis+sentinel://h/m?wait_timeout=-2": "wait_timeout must be a number of seconds above 0",
    "redis+sentinel://h/m?wait_timeout=soon": "wait_timeout must be a number of seconds above 0",
    "redis+sentinel://h/m?wait_timeout=inf": "wait_timeout must be a number of seconds above 0",
    f"redis://h/0?sentinel_password={SENTINEL_PASSWORD}": "Sentinel URLs only",
    "redis+sentinel://h/m?sentinel_ssl=maybe": "sentinel_ssl must be true or false",
    "redis+sentinel://h/m?ssl_cert_reqs=maybe": "ssl_cert_reqs",
    f"sentinel://:{PASSWORD}@h/mymaster": (
        "use redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster://, rediss+cluster:// or unix://"
    ),
    "redis+sentinel:/h/mymaster": "not a Redis URL",
}


@pytest.mark.parametrize("url", list(BAD))
def test_a_bad_url_is_a_one_line_error_naming_the_problem_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        RedisSettings.from_dsn(url)
    message = str(caught.value)
    assert BAD[url] in message
    assert "\n" not in message
    assert_never_shown(PASSWORD, message)
    assert_never_shown(SENTINEL_PASSWORD, message)


def test_an_unknown_scheme_lists_every_accepted_one() -> None:
    with pytest.raises(ValueError, match="invalid Redis URL scheme 'redis-sentinel'") as caught:
        RedisSettings.from_dsn("redis-sentinel://h/mymaster")
    for scheme in ("redis://", "rediss://", "redis+sentinel://", "rediss+sentinel://", "unix://"):
        assert scheme in str(caught.value)


def test_describe_shows_the_sentinels_and_the_service_but_no_password() -> None:
    url = (
        f"rediss+sentinel://alice:{PASSWORD}@127.0.0.1:26379,127.0.0.1:26380,[::1]/mymaster/2"
        f"?sentinel_password=Zq9%2BKx7%2FVw2&wait_replicas=1"
    )
    settings = RedisSettings.from_dsn(url)
    assert settings.describe() == "rediss+sentinel://alice:***@127.0.0.1:26379,127.0.0.1:26380,[::1]:26379/mymaster/2"
    passwordless = RedisSettings.from_dsn(f"redis+sentinel://:{PASSWORD}@127.0.0.1:26379,127.0.0.1:26380/mymaster/0")
    assert passwordless.describe() == "redis+sentinel://:***@127.0.0.1:26379,127.0.0.1:26380/mymaster/0"
    for shown in (settings.describe(), repr(settings), utils.redact_url(url), utils.redact_text(f"at {url}: down")):
        assert_never_shown(PASSWORD, shown)
        assert_never_shown(SENTINEL_PASSWORD, shown)
    # arq's form: one Sentinel as host/port, the Sentinels' password set in code
    arq_style = RedisSettings(host="s1", port=26379, sentinel=True, sentinel_password=SENTINEL_PASSWORD)
    assert arq_style.describe() == "redis+sentinel://s1:26379/mymaster/0"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0",
        "rediss+sentinel://h:26379/svc/5",
        "redis+sentinel://[::1]:26379/mymaster/1",
        "redis://[::1]:7001/2",
        "rediss://cache.example:6390/3",
    ],
)
def test_describe_is_a_url_that_reads_back_to_the_same_settings(url: str) -> None:
    """Without passwords (describe hides them) and query options (it shows only where Redis is)."""
    settings = RedisSettings.from_dsn(url)
    assert RedisSettings.from_dsn(settings.describe()) == settings


def test_redaction_and_the_secrets_to_mask_cover_the_sentinel_password_in_the_query() -> None:
    url = f"redis+sentinel://:{PASSWORD}@h1:26379,h2/mymaster/0?sentinel_password=Zq9%2BKx7%2FVw2"
    assert utils.redact_url(url) == "redis+sentinel://:***@h1:26379,h2/mymaster/0?sentinel_password=***"
    secrets = utils.url_secrets(url)
    assert PASSWORD in secrets and SENTINEL_PASSWORD in secrets


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"wait_replicas": -1}, "wait_replicas must be a whole number, 0 or more, got -1"),
        ({"wait_replicas": 1.5}, "wait_replicas"),
        ({"wait_timeout": 0}, "wait_timeout must be a number of seconds above 0, got 0"),
        ({"wait_timeout": -1.0}, "wait_timeout"),
        ({"sentinel_check_interval": 0}, "sentinel_check_interval must be a number of seconds above 0"),
        ({"sentinel_check_interval": float("nan")}, "sentinel_check_interval"),
        ({"host": [("s1", 26379)]}, "a list of hosts is a list of Sentinels or of cluster nodes"),
        ({"host": [], "sentinel": True}, "at least one Sentinel address"),
    ],
)
def test_settings_that_no_connection_could_use_are_refused_at_construction(
    kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValueError) as caught:
        RedisSettings(**kwargs)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_arq_style_construction_still_works() -> None:
    """Positional and keyword arguments in arq's order, a Sentinel list with sentinel=True, the defaults."""
    assert RedisSettings("h", 6380, None, 2).database == 2
    settings = RedisSettings(host=[("s1", 26379), ("s2", 26380)], sentinel=True, sentinel_master="m", wait_replicas=0)
    assert sentinel_addresses(settings) == [("s1", 26379), ("s2", 26380)]
    assert sentinel_addresses(RedisSettings(host="s1", port=26381, sentinel=True)) == [("s1", 26381)]
    assert RedisSettings().wait_replicas == 0 and RedisSettings().wait_timeout == 1.0


def test_the_sentinels_get_their_own_credentials_and_tls() -> None:
    plain = RedisSettings.from_dsn(f"redis+sentinel://:{PASSWORD}@h/m?sentinel_username=sen&sentinel_password=x")
    assert sentinel_kwargs(plain) == {"username": "sen", "password": "x"}  # not the master's password
    tls = RedisSettings.from_dsn("rediss+sentinel://h/m?ssl_ca_certs=/ca.pem&ssl_check_hostname=true")
    assert sentinel_tls(tls)
    kwargs = sentinel_kwargs(tls)
    assert kwargs["ssl"] is True and kwargs["ssl_ca_certs"] == "/ca.pem" and kwargs["ssl_check_hostname"] is True
    assert not sentinel_tls(RedisSettings.from_dsn("rediss+sentinel://h/m?sentinel_ssl=false"))
    assert "ssl" not in sentinel_kwargs(RedisSettings.from_dsn("rediss+sentinel://h/m?sentinel_ssl=false"))
    assert sentinel_tls(RedisSettings.from_dsn("redis+sentinel://h/m?sentinel_ssl=true"))


BAD_CLI_URLS = {
    "no-service": f"redis+sentinel://:{PASSWORD}@127.0.0.1:9,127.0.0.1:10",
    "bad-port": f"redis+sentinel://:{PASSWORD}@127.0.0.1:9,127.0.0.1:notaport/mymaster",
    "bad-wait": f"redis+sentinel://:{PASSWORD}@127.0.0.1:9/mymaster?wait_timeout=0&sentinel_password=Zq9%2BKx7%2FVw2",
}


@pytest.mark.parametrize("command", ["check", "start"])
@pytest.mark.parametrize("case", list(BAD_CLI_URLS))
def test_the_cli_refuses_a_bad_sentinel_url_with_one_line_and_exit_2(tmp_path: Path, case: str, command: str) -> None:
    proc = run_pool(command, SETTINGS, "--redis", BAD_CLI_URLS[case], cwd=tmp_path)
    line = assert_one_line_error(proc, 2, "invalid Redis URL")
    assert_never_shown(PASSWORD, line)
    assert_never_shown(SENTINEL_PASSWORD, line)


def test_a_bad_sentinel_url_from_the_environment_is_exit_2(tmp_path: Path) -> None:
    env = pool_env(POOL_REDIS_URL=f"redis+sentinel://:{PASSWORD}@127.0.0.1:9/")
    proc = run_pool("check", SETTINGS, cwd=tmp_path, env=env)
    line = assert_one_line_error(proc, 2, "invalid Redis URL", "service")
    assert_never_shown(PASSWORD, line)


@pytest.fixture
def silent_sentinel() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a Sentinel that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_the_sync_client_gives_up_on_a_silent_sentinel_after_one_reply_timeout(silent_sentinel: int) -> None:
    """The supervisor's loop must not hang on Redis: a Sentinel that never answers costs one reply timeout (1 s),
    with no hidden retry, and one that refuses costs nothing."""
    refused = free_port()
    settings = RedisSettings.from_dsn(f"redis+sentinel://127.0.0.1:{refused},127.0.0.1:{silent_sentinel}/mymaster")
    queue = SyncQueue.connect(settings, "default")
    try:
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError, match="No master found for 'mymaster'"):
            queue.ping()
        elapsed = time.monotonic() - started
    finally:
        queue.close()
    assert 0.9 <= elapsed < 1.9, elapsed


def test_pool_start_logs_its_sentinel_target_by_describe_without_passwords(tmp_path: Path) -> None:
    """`pool start` carries a Sentinel URL to its sync client (it waits for the master, naming the Sentinels) and
    shows it only as describe() does; TERM while waiting stops it cleanly."""
    ports = (free_port(), free_port())
    url = (
        f"redis+sentinel://:{PASSWORD}@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster/0"
        f"?sentinel_password=Zq9%2BKx7%2FVw2"
    )
    target = f"redis+sentinel://:***@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster/0"
    with supervisors() as started:
        sup = Supervisor(tmp_path, "sentinel", url, SETTINGS, "--procs", "1")
        started.append(sup)
        wait_for_sync(lambda: f"waiting for Redis at {target}" in sup.log, 15, message="the wait for the master")
        sup.process.terminate()
        assert sup.process.wait(10) == 0, sup.log
    assert "No master found for 'mymaster'" in sup.log
    assert_never_shown(PASSWORD, sup.log)
    assert_never_shown(SENTINEL_PASSWORD, sup.log)
