"""Who a request comes from: bearer tokens, browser logins with CSRF, the login and logout pages.

:class:`AuthMiddleware` runs before every route, the plugins' included. It takes the credential from
``Authorization: Bearer <token>`` or, for browsers, from the login cookie, verifies it through
:class:`~haneul.platform.accounts.Accounts` and leaves the principal in ``request.state`` for the
``CurrentPrincipal`` dependency. Without a valid credential the API answers 401 and a page redirects
to ``/login``; only health, the login page, static files and the API description are public, plus
the doors plugins declare (:class:`~haneul.platform.plugins.Plugin` ``public_paths`` and
``route_keys``), behind which the route checks a credential of its own.

A browser's writes (any method but GET/HEAD/OPTIONS with the cookie) must carry the login's CSRF
token in an ``X-CSRF-Token`` header (the pages' script adds it to every ``fetch``) or a ``csrf``
query parameter (plain forms); a bearer token needs none, as no browser sends one by itself.
``GET /?token=<token>`` (the link the server prints on first start) logs the browser in and drops
the token from the address.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haneul.errors import HaneulError, Unauthorized
from haneul.platform.accounts import Accounts, Credential

COOKIE = "haneul_login"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: reachable without a credential
PUBLIC_PATHS = ("/api/v1/health", "/login", "/api/v1/login", "/api/v1/docs", "/api/v1/openapi.json",
                "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)
#: answered in JSON rather than with the login page
API_PREFIXES = ("/api/", "/v1/")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class AuthMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, accounts: Accounts,
                 public_paths: Sequence[str] = (), route_keys: Sequence[tuple[str, str]] = ()) -> None:
        self.app = app
        self.accounts = accounts
        self.public_paths = [re.compile(p) for p in public_paths]
        self.route_keys = [(prefix, re.compile(p)) for prefix, p in route_keys]

    def _public(self, path: str) -> bool:
        return _public(path) or any(p.fullmatch(path) for p in self.public_paths)

    def _route_key(self, path: str, token: str | None, via_cookie: bool) -> bool:
        return token is not None and not via_cookie and any(
            token.startswith(prefix) and p.fullmatch(path) for prefix, p in self.route_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = dict(scope["headers"])
        token, via_cookie = _credential(headers)
        if self._route_key(path, token, via_cookie):
            scope.setdefault("state", {})["route_key"] = token
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query and method == "GET" and not _is_api(path):
            await self._login_link(scope, receive, send, query)
            return
        cred: Credential | None = None
        if token is not None:
            try:
                # a token seen within the minute is a dict look-up; only a new one costs a thread and a hash
                cred = self.accounts.cached(token) or await run_in_threadpool(self.accounts.resolve, token)
            except HaneulError as exc:
                if not self._public(path):
                    await _refuse(scope, send, exc, clear_cookie=via_cookie)
                    return
        if cred is None and not self._public(path):
            await _refuse(scope, send, Unauthorized(
                "a token is required: run `haneul login` (or pass Authorization: Bearer <token>); on the "
                "server's machine the local admin token is in HANEUL_HOME/admin.token"))
            return
        if cred is not None and via_cookie and method not in SAFE_METHODS and path != "/login":
            sent = headers.get(CSRF_HEADER, b"").decode("latin-1") or (query.get("csrf") or [""])[0]
            if not cred.csrf or not secrets.compare_digest(sent, cred.csrf):
                await _json(send, 403, {"code": "forbidden", "message": "missing or wrong CSRF token; reload "
                                        "the page and try again"})
                return
        state = scope.setdefault("state", {})
        if cred is not None:
            state["principal"] = cred.principal
            state["credential"] = cred
        await self.app(scope, receive, send)

    async def _login_link(self, scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
        """``/page?token=...``: trade the token for a browser login, then show the page without it."""
        rest = {k: v for k, v in query.items() if k != "token"}
        target = scope["path"] + ("?" + urlencode(rest, doseq=True) if rest else "")
        try:
            cred = await run_in_threadpool(self.accounts.resolve, query["token"][0])
            cookie, _ = await run_in_threadpool(self.accounts.web_login_for, cred)
        except HaneulError as exc:
            await _refuse(scope, send, exc)
            return
        response = RedirectResponse(target, status_code=303)
        set_login_cookie(response, cookie, secure=scope.get("scheme") == "https")
        await response(scope, receive, send)


class AsLocalAdmin:
    """Every request is the local admin: for ``create_app(authenticate=False)`` only (a benchmark's
    baseline, an app embedded behind a gate of its own), never for a server others can reach."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, accounts: Accounts) -> None:
        self.app = app
        self.accounts = accounts
        self._cred: Credential | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._cred is None:
                self._cred = await run_in_threadpool(self.accounts.resolve_local_admin)
            state = scope.setdefault("state", {})
            state["principal"], state["credential"] = self._cred.principal, self._cred
        await self.app(scope, receive, send)


def _credential(headers: dict[bytes, bytes]) -> tuple[str | None, bool]:
    auth = headers.get(b"authorization", b"").decode("latin-1").strip()
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
    raw = headers.get(b"cookie")
    if raw:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw.decode("latin-1"))
        except Exception:  # a malformed Cookie header is the same as none
            return None, False
        if COOKIE in jar and jar[COOKIE].value:
            return jar[COOKIE].value, True
    return None, False


async def _refuse(scope: Scope, send: Send, exc: HaneulError, *, clear_cookie: bool = False) -> None:
    path = scope["path"]
    if _is_api(path) or scope["method"] not in SAFE_METHODS:
        await _json(send, exc.http_status, exc.to_dict(),
                    [(b"www-authenticate", b'Bearer realm="haneul"')] if exc.http_status == 401 else [])
        return
    query = scope.get("query_string", b"").decode("latin-1")
    here = path + (f"?{query}" if query and "token=" not in query else "")
    location = f"/login?next={quote(here, safe='')}"
    if exc.http_status == 401 and clear_cookie:
        location += "&expired=1"
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    if clear_cookie:
        headers.append((b"set-cookie", f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax".encode()))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = orjson.dumps({"error": body})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


def set_login_cookie(response: Response, token: str, *, secure: bool) -> None:
    from haneul.platform.accounts import WEB_LOGIN_S

    response.set_cookie(COOKIE, token, max_age=int(WEB_LOGIN_S), path="/", httponly=True, samesite="lax",
                        secure=secure)


# --------------------------------------------------------------------------------------------------
# the login and logout pages

pages = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # only a path on this server: "//evil.example" or "https://..." would send the user elsewhere
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@pages.get("/login")
def login_page(request: Request, next: str = "/", expired: int = 0) -> HTMLResponse:
    message = "Your login has expired; log in again." if expired else None
    return _render_login(request, _safe_next(next), message)


def _render_login(request: Request, target: str, message: str | None, status_code: int = 200) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "login.html", {"next": target, "message": message},
                                      status_code=status_code)


@pages.post("/login")
async def login_submit(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    target = _safe_next((form.get("next") or ["/"])[0])
    name, password = (form.get("name") or [""])[0].strip(), (form.get("password") or [""])[0]
    token = (form.get("token") or [""])[0].strip()
    accounts: Accounts = request.app.state.accounts
    try:
        if token:
            cred = await run_in_threadpool(accounts.resolve, token)
            cookie, _ = await run_in_threadpool(accounts.web_login_for, cred)
        else:
            cookie, _ = await run_in_threadpool(accounts.login, name, password)
    except HaneulError as exc:
        return _render_login(request, target, html.escape(exc.message), status_code=exc.http_status)
    response = RedirectResponse(target, status_code=303)
    set_login_cookie(response, cookie, secure=request.url.scheme == "https")
    return response


@pages.post("/logout")
async def logout(request: Request) -> Response:
    token, via_cookie = _credential({k.lower(): v for k, v in request.headers.raw})
    if token is not None and via_cookie:
        await run_in_threadpool(request.app.state.accounts.logout, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


__all__ = ["AsLocalAdmin", "AuthMiddleware", "COOKIE", "PUBLIC_PATHS", "pages", "set_login_cookie"]
