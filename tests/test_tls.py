"""TLS against a real redis-server with a TLS port: mistakes about TLS are one clear line at once,
not a timeout after every retry; and a worker does serve jobs over TLS.

The server listens on a plain port (used to enqueue and to check readiness) and on a TLS port with a
self-signed certificate made by ``openssl``. Skipped when openssl is missing or redis-server was built without TLS.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pool import PoolRedis, RedisSettings, create_pool
from tests.redis_server import RedisServer, free_port
from tests.test_faults import FAULT_SETTINGS, run_pool

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a certificate")


@pytest.fixture
def tls_server(tmp_path: Path, redis_server_factory: Callable[..., RedisServer]) -> tuple[RedisServer, int]:
    """A redis-server with a TLS port (returned with it) beside its plain one."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subject = ["-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *subject],
        check=True,
        capture_output=True,
    )
    tls_port = free_port()
    config = {"tls-port": str(tls_port), "tls-cert-file": str(cert), "tls-key-file": str(key)}
    config |= {"tls-ca-cert-file": str(cert), "tls-auth-clients": "no"}
    try:
        server = redis_server_factory(config=config)
    except Exception as exc:  # a redis-server built without TLS refuses the directives and exits
        pytest.skip(f"redis-server without TLS support: {exc}")
    return server, tls_port


def one_line_failure(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output, output[-3000:]
    assert "retries remaining" not in output and "retrying in" not in output, "it retried a permanent mistake"
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert expected in last, last


@pytest.mark.parametrize("command", ["worker", "start"])
def test_rediss_url_to_a_plain_port_is_one_line(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer], command: str
) -> None:
    """The handshake to a plain port never fails by itself (the server waits for the end of a 'command');
    before the probe this took ~34 s of timeouts and ended with 'Timeout connecting to server'."""
    server = redis_server_factory()
    url = f"rediss://127.0.0.1:{server.port}/0"
    proc = run_pool(tmp_path, command, "--redis", url, FAULT_SETTINGS, timeout=20)
    one_line_failure(proc, "does not speak TLS")


@pytest.mark.parametrize("command", ["worker", "start"])
def test_redis_url_to_a_tls_port_is_one_line(tmp_path: Path, tls_server: tuple[RedisServer, int], command: str) -> None:
    _, tls_port = tls_server
    proc = run_pool(tmp_path, command, "--redis", f"redis://127.0.0.1:{tls_port}/0", FAULT_SETTINGS, timeout=20)
    one_line_failure(proc, "expects TLS")


@pytest.mark.parametrize("command", ["worker", "start"])
def test_certificate_that_fails_verification_is_one_line(
    tmp_path: Path, tls_server: tuple[RedisServer, int], command: str
) -> None:
    _, tls_port = tls_server
    proc = run_pool(tmp_path, command, "--redis", f"rediss://127.0.0.1:{tls_port}/0", FAULT_SETTINGS, timeout=20)
    one_line_failure(proc, "CERTIFICATE_VERIFY_FAILED")


async def test_worker_serves_jobs_over_tls(tmp_path: Path, tls_server: tuple[RedisServer, int]) -> None:
    """Enqueued over TLS, run by a ``pool worker --burst`` connected over TLS (certificate checks off in the URL)."""
    _, tls_port = tls_server
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=none"
    client: PoolRedis = await create_pool(RedisSettings.from_dsn(url))
    try:
        job = await client.enqueue_job("pure", 7, 0, _job_id="over-tls")
        assert job is not None
        proc = run_pool(tmp_path, "worker", "--burst", "--redis", url, FAULT_SETTINGS, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert await job.result(timeout=5) == 7
    finally:
        await client.aclose()


def test_tls_options_in_the_url() -> None:
    settings = RedisSettings.from_dsn("rediss://h:1/2?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem&ssl_check_hostname=true")
    assert (settings.ssl, settings.ssl_cert_reqs, settings.ssl_ca_certs) == (True, "none", "/ca.pem")
    assert settings.ssl_check_hostname is True
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        RedisSettings.from_dsn("rediss://h:1/2?ssl_cert_reqs=maybe")
