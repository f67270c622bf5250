"""Who may use the dashboard, and which POSTs are the user's own: authentication and CSRF, as ASGI middleware.

Authentication (when the app is given a token or credentials; ``pool dashboard`` requires one of them to bind
anywhere but loopback): HTTP Basic, so a browser asks for it, or ``Authorization: Bearer <token>``. With a token
the Basic user name is not checked, only the password against the token. Compared in constant time.

CSRF: every response sets a random per-browser token in a cookie (``SameSite=Strict``, ``HttpOnly``, and ``Secure``
when served over https) unless the request carried one; every form carries it in a hidden field, and a POST is
served only when the field equals the cookie (double submit: another site can make the browser send the cookie,
not read it to fill the field).
A POST whose ``Origin`` header names another host is refused as well.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "pool_csrf"
CSRF_FIELD = "csrf"
REALM = "pool dashboard"


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Credentials:
    """What a request must show: a token, Basic credentials, both accepted, or nothing (``open``)."""

    def __init__(self, token: str | None = None, basic_auth: tuple[str, str] | None = None) -> None:
        if token is not None and not token:
            raise ValueError("the dashboard's token must not be empty")
        if basic_auth is not None and not (basic_auth[0] and basic_auth[1]):
            raise ValueError("the dashboard's basic-auth user and password must not be empty")
        self.token, self.basic_auth = token, basic_auth

    @property
    def open(self) -> bool:
        return self.token is None and self.basic_auth is None

    def allow(self, authorization: str) -> bool:
        scheme, _, value = authorization.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.token is not None:
            return _same(value, self.token)
        if scheme != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if self.token is not None and _same(password, self.token):
            return True
        if self.basic_auth is not None:
            # both compared, whatever the first says: no timing hint of which one was wrong
            user_ok, password_ok = _same(user, self.basic_auth[0]), _same(password, self.basic_auth[1])
            return user_ok and password_ok
        return False


async def _plain(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Refuses (401, asking for Basic credentials) every request without the token or credentials."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app, self.credentials = app, credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.credentials.open:
            await self.app(scope, receive, send)
            return
        if self.credentials.allow(_headers(scope).get("authorization", "")):
            await self.app(scope, receive, send)
            return
        challenge = f'Basic realm="{REALM}", charset="UTF-8"'.encode()
        await _plain(send, 401, "authentication required\n", [(b"www-authenticate", challenge)])


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8080`` -> ``::1``, ``a.example:80`` -> ``a.example``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheckMiddleware:
    """Serves only requests whose Host header names one of ``allowed`` (400 otherwise). An unauthenticated
    dashboard on loopback needs it: through DNS rebinding, a page of another site reaches 127.0.0.1 under the
    site's own name, reads the pages and their CSRF token (same origin, as far as the browser knows) and could
    post actions. Its requests carry the site's name in Host, and are refused here."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app, self.allowed = app, tuple(name.lower() for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and host_name(_headers(scope).get("host", "")) not in self.allowed:
            await _plain(send, 400, "refused: this dashboard answers to " + ", ".join(self.allowed) + " only\n")
            return
        await self.app(scope, receive, send)


def csrf_token(scope: Scope) -> str:
    """The request's CSRF token: its cookie's, or the new one the middleware will set."""
    return str(scope["state"]["csrf"])


class CSRFMiddleware:
    """Gives every browser a CSRF token (cookie) and refuses (403) a POST whose form field does not match it.

    The form body is read here (urlencoded, small) and handed on to the app unchanged."""

    MAX_BODY = 64 * 1024

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header: as if there were none
            cookie = SimpleCookie()
        known = cookie[CSRF_COOKIE].value if CSRF_COOKIE in cookie else ""
        token = known if len(known) >= 32 else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf"] = token
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            body = await _read_body(receive, self.MAX_BODY)
            reason = _refusal(scope, headers, known, body)
            if reason:
                await _plain(send, 403, f"refused: {reason}\n")
                return
            receive = _replay(body)
        if token == known:
            await self.app(scope, receive, send)
            return

        path = (scope.get("root_path") or "") + "/"
        secure = "; Secure" if scope.get("scheme") == "https" else ""  # never sent back over plain HTTP
        set_cookie = f"{CSRF_COOKIE}={token}; Path={path}; HttpOnly; SameSite=Strict{secure}".encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", set_cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _refusal(scope: Scope, headers: dict[str, str], cookie_token: str, body: bytes) -> str:
    """Why a POST is refused ('' when it is not)."""
    origin = headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != headers.get("host", ""):
        return "the request came from another site"
    from urllib.parse import parse_qs

    field = parse_qs(body.decode("latin-1")).get(CSRF_FIELD, [""])[0]
    if not cookie_token or not field or not _same(field, cookie_token):
        return "missing or wrong CSRF token (reload the page and try again)"
    return ""


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit or not message.get("more_body"):
            return body[:limit]


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
