"""A Redis password never reaches the user's screen: URLs are parsed, not pattern-matched, before they are shown.

Passwords people really use contain ``/``, ``@``, ``+``, ``=``, ``:``, ``#`` and ``?``, often unencoded. Every
such URL must work (the password reaches Redis intact) and must never be echoed, whole or in part, by the CLI:
not in its errors (exit 2 for a URL that cannot be parsed, 1 for a failure), not in its logs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pool import RedisSettings, utils
from tests.test_cli import SETTINGS, assert_one_line_error, pool_env, run_pool

# (password, how it is written in the URL)
NASTY = {
    "slash-plus-equals": ("Sup3r/S3cret+x==", "Sup3r/S3cret+x=="),
    "at-and-slash": ("p@ss/w0rd", "p@ss/w0rd"),
    "colon-hash-question": ("c0l:on#h4sh?qu3st", "c0l:on#h4sh?qu3st"),
    "percent-encoded": ("en/c0ded@pw+=", quote("en/c0ded@pw+=", safe="")),
}


def fragments(password: str) -> list[str]:
    """The password and every run of 3+ characters between its special characters: none may be shown."""
    return [password, *(part for part in re.split(r"[^A-Za-z0-9]", password) if len(part) >= 3)]


def assert_never_shown(password: str, output: str) -> None:
    for fragment in fragments(password):
        assert fragment not in output, f"{fragment!r} shown in {output!r}"


@pytest.mark.parametrize("case", list(NASTY))
def test_a_url_with_a_nasty_password_parses_to_that_password_and_is_redacted(case: str) -> None:
    password, written = NASTY[case]
    url = f"redis://:{written}@10.1.2.3:6380/4"
    settings = RedisSettings.from_dsn(url)
    assert (settings.password, settings.host, settings.port, settings.database) == (password, "10.1.2.3", 6380, 4)
    in_text = utils.redact_text(f"could not reach {url}: refused")
    for shown in (utils.redact_url(url), repr(settings), settings.describe(), in_text):
        assert_never_shown(password, shown)
        assert "10.1.2.3" in shown
    assert utils.redact_url(url) == "redis://:***@10.1.2.3:6380/4"


def test_redaction_keeps_the_user_and_hides_a_unix_socket_password() -> None:
    assert utils.redact_url("rediss://alice:p@ss/w0rd@cache:6390/2") == "rediss://alice:***@cache:6390/2"
    settings = RedisSettings.from_dsn("unix://:p@ss/w0rd@/run/redis.sock?db=3")
    assert (settings.password, settings.unix_socket_path, settings.database) == ("p@ss/w0rd", "/run/redis.sock", 3)
    assert utils.redact_url("unix://:p@ss/w0rd@/run/redis.sock?db=3") == "unix://:***@/run/redis.sock?db=3"
    assert "w0rd" not in utils.redact_url("redis://h:1/0?password=p@ss/w0rd")


@pytest.mark.parametrize("case", list(NASTY))
def test_cli_reaches_redis_with_a_nasty_password_and_never_shows_it(
    tmp_path: Path, redis_server_factory: Callable[..., Any], case: str
) -> None:
    """The right password gets through (check finds no worker rather than failing to authenticate; a burst
    worker runs and logs where it connected) and no part of it is printed."""
    password, written = NASTY[case]
    server = redis_server_factory(password=password)
    url = f"redis://:{written}@127.0.0.1:{server.port}/0"
    check = run_pool("check", SETTINGS, "--redis", url, cwd=tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "no health check sentinel" in check.stderr, check.stderr
    assert_never_shown(password, check.stdout + check.stderr)
    worker = run_pool("worker", SETTINGS, "--burst", "-v", "--redis", url, cwd=tmp_path)
    output = worker.stdout + worker.stderr
    assert worker.returncode == 0, output
    assert f"redis://:***@127.0.0.1:{server.port}/0" in output
    assert_never_shown(password, output)


BAD_URLS = {
    "port-not-a-number": "redis://:Sup3r/S3cret+x==@127.0.0.1:notaport/0",
    "port-out-of-range": "redis://:p@ss/w0rd@127.0.0.1:99999/0",
    "no-host-and-no-at": "redis://:Sup3r/S3cret+x==",
    "database-not-a-number": "redis://:p@ss/w0rd@127.0.0.1:9/zero",
    "bad-scheme": "http://:Sup3r/S3cret+x==@example.invalid/",
    "no-scheme": ":Sup3r/S3cret+x==@127.0.0.1:9",
}


@pytest.mark.parametrize("command", ["check", "worker"])
@pytest.mark.parametrize("case", list(BAD_URLS))
def test_an_invalid_url_is_a_one_line_usage_error_that_shows_no_password(
    tmp_path: Path, case: str, command: str
) -> None:
    proc = run_pool(command, SETTINGS, "--redis", BAD_URLS[case], cwd=tmp_path)
    line = assert_one_line_error(proc, 2, "invalid Redis URL")
    assert_never_shown("Sup3r/S3cret+x==", line)
    assert_never_shown("p@ss/w0rd", line)


def test_an_invalid_url_from_the_environment_shows_no_password(tmp_path: Path) -> None:
    env = pool_env(POOL_REDIS_URL="redis://:p@ss/w0rd@127.0.0.1:99999/0")
    proc = run_pool("check", SETTINGS, cwd=tmp_path, env=env)
    line = assert_one_line_error(proc, 2, "invalid Redis URL")
    assert_never_shown("p@ss/w0rd", line)


def test_a_url_given_where_no_argument_is_expected_is_not_echoed(tmp_path: Path) -> None:
    """argparse repeats unrecognized arguments; a URL among them is shown redacted."""
    proc = subprocess.run(
        [sys.executable, "-m", "pool", "check", SETTINGS, "redis://:Sup3r/S3cret+x==@127.0.0.1:9/0"],
        cwd=tmp_path,
        env=pool_env(),
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "unrecognized arguments" in proc.stderr
    assert_never_shown("Sup3r/S3cret+x==", proc.stdout + proc.stderr)
