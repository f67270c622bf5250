"""Tell a configuration mistake about TLS apart from a Redis that is merely unreachable.

A ``rediss://`` URL pointed at a plain Redis port does not fail: the server reads the TLS ClientHello as the
start of an inline command and waits for its end, so the handshake just times out, retry after retry. The
opposite mistake (``redis://`` to a TLS-only port) fails as "connection closed", and a certificate that does
not verify fails the same way each time. All of these look like a network problem worth retrying. When a
connection fails, one cheap probe on a fresh socket says which it is, so the user gets one clear line at once.

The probes use blocking sockets so that the supervisor's synchronous parent and the asyncio client (through a
thread) share them; they run only after a connection has failed.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from ..utils import caused_by

if TYPE_CHECKING:
    from .settings import RedisSettings


def speaks_plain_resp(host: str, port: int, timeout: float) -> bool:
    """True when the server answers a plain-text PING as Redis does (``+PONG``, or an error such as NOAUTH)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply[:1] in (b"+", b"-")


def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """True when the server completes a TLS handshake (certificates are not checked: this only asks whether
    the port speaks TLS at all)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, context.wrap_socket(raw):
            return True
    except OSError:  # ssl.SSLError is an OSError
        return False


def tls_mismatch(settings: RedisSettings, timeout: float) -> str | None:
    """Describe the mismatch between the URL's scheme and the server, or None when there is none to see (or
    nothing to probe: a unix socket, sentinels)."""
    if settings.sentinel or settings.unix_socket_path or not isinstance(settings.host, str):
        return None
    host, port = settings.host, settings.port
    if settings.ssl and speaks_plain_resp(host, port, timeout):
        return "the server does not speak TLS (the URL says rediss://): use redis://, or enable TLS on the server"
    if not settings.ssl and speaks_tls(host, port, timeout):
        return "the server expects TLS (the URL says redis://): use rediss://"
    return None


def certificate_problem(exc: BaseException) -> bool:
    """True when the error (or one it was raised from) is a failed certificate check."""
    return caused_by(
        exc, lambda error: isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(error)
    )


def permanent_problem(settings: RedisSettings, exc: BaseException, timeout: float) -> str | None:
    """A reason that retrying cannot fix (a TLS mismatch, a certificate that fails), or None."""
    if certificate_problem(exc):
        return str(exc)
    return tls_mismatch(settings, timeout)
