"""Who may change what: an ASGI guard in front of every route, and the sign-in routes of the review page.

- **Host**: only ``allowed_hosts`` are served (a DNS-rebinding page gets 400).
- **Mutating requests** (POST, PUT, PATCH, DELETE):
  - from a browser page of another origin: 403 (``Origin`` / ``Sec-Fetch-Site``), unless that origin is
    in ``allowed_origins``;
  - with a body that is neither JSON nor multipart: 415 (the content types a cross-site form can send
    without a CORS preflight are refused);
  - when an API token is configured: ``Authorization: Bearer <token>``, or the review page's session
    cookie (``SameSite=Strict``, HttpOnly) together with its ``X-CSRF-Token`` header; otherwise 401.
- Reads stay open to whoever passes the host check.

Sessions are stateless: the cookie is a nonce signed with the token (HMAC-SHA256), the CSRF token a
second signature of the same nonce, so every replica checks them without shared state, and changing
the token signs everybody out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Optional

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .responses import SessionState
from .settings import ApiSettings

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
BODY_TYPES = {"application/json", "multipart/form-data"}
SESSION_COOKIE = "screenalytics_session"
CSRF_HEADER = "x-csrf-token"
SESSION_MAX_AGE_S = 12 * 3600
SIGN_IN_PATH = "/auth/session"


def _sign(token: str, purpose: str, nonce: str) -> str:
    return hmac.new(token.encode(), f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()


def new_session(token: str, now: float | None = None) -> tuple[str, str]:
    """(cookie value, CSRF token) of a new session."""
    nonce = f"{int(time.time() if now is None else now)}-{secrets.token_hex(16)}"
    return f"{nonce}.{_sign(token, 'session', nonce)}", _sign(token, "csrf", nonce)


def session_nonce(token: str, cookie: Optional[str], now: float | None = None) -> Optional[str]:
    """The nonce of a valid, unexpired session cookie, else None."""
    if not cookie or "." not in cookie:
        return None
    nonce, sig = cookie.rsplit(".", 1)
    if not hmac.compare_digest(sig, _sign(token, "session", nonce)):
        return None
    issued = nonce.split("-", 1)[0]
    if not issued.isdigit() or (time.time() if now is None else now) - int(issued) > SESSION_MAX_AGE_S:
        return None
    return nonce


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _origin_host(origin: str) -> Optional[str]:
    from urllib.parse import urlsplit

    parts = urlsplit(origin)
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


class Guard:
    """The checks above, as ASGI middleware (streaming bodies and SSE pass through untouched)."""

    def __init__(self, app: ASGIApp, settings: ApiSettings):
        self.app = app
        self.settings = settings
        self.any_host = "*" in settings.allowed_hosts
        self.hosts = {h.lower() for h in settings.allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.check(scope["method"], scope.get("path", ""), Headers(scope=scope))
            if problem is not None:
                status, detail = problem
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, method: str, path: str, headers: Headers) -> Optional[tuple[int, str]]:
        host = headers.get("host", "")
        if not self.any_host and _hostname(host) not in self.hosts:
            return 400, "Host not allowed: add it to SCREENALYTICS_ALLOWED_HOSTS"
        if method not in MUTATING:
            return None
        origin = headers.get("origin")
        if origin is not None and origin != "null" and _origin_host(origin) != host.lower() and origin not in self.settings.allowed_origins:
            return 403, f"cross-origin request from {origin[:100]} refused"
        if origin == "null" or (headers.get("sec-fetch-site") in ("cross-site", "same-site") and origin not in self.settings.allowed_origins):
            return 403, "cross-site request refused"
        if self._has_body(headers):
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind not in BODY_TYPES:
                return 415, "send JSON (application/json) or multipart/form-data"
        token = self.settings.api_token
        if token is None or path.endswith(SIGN_IN_PATH):
            return None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
            return None
        nonce = session_nonce(token, _cookie(headers, SESSION_COOKIE))
        if nonce is not None:
            if hmac.compare_digest(headers.get(CSRF_HEADER, ""), _sign(token, "csrf", nonce)):
                return None
            return 403, "missing or wrong X-CSRF-Token for this session"
        return 401, "this server needs an API token: send Authorization: Bearer <token> (or sign in at /auth/session)"

    @staticmethod
    def _has_body(headers: Headers) -> bool:
        length = headers.get("content-length")
        return bool(headers.get("transfer-encoding")) or (length is not None and length.strip() not in ("", "0"))


def _cookie(headers: Headers, name: str) -> Optional[str]:
    from http.cookies import SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no session
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=4096)


router = APIRouter(tags=["auth"])


@router.get(SIGN_IN_PATH, response_model=SessionState)
def session_state(request: Request) -> dict:
    settings: ApiSettings = request.app.state.ctx.settings
    if settings.api_token is None:
        return {"auth_required": False, "signed_in": True, "csrf_token": None}
    nonce = session_nonce(settings.api_token, request.cookies.get(SESSION_COOKIE))
    return {"auth_required": True, "signed_in": nonce is not None, "csrf_token": _sign(settings.api_token, "csrf", nonce) if nonce else None}


@router.post(SIGN_IN_PATH, response_model=SessionState)
def sign_in(req: SignIn, request: Request, response: Response) -> dict:
    """Exchange the API token for a session cookie (for the review page) and its CSRF token."""
    settings: ApiSettings = request.app.state.ctx.settings
    if settings.api_token is None:
        return {"auth_required": False, "signed_in": True, "csrf_token": None}
    if not hmac.compare_digest(req.token.encode(), settings.api_token.encode()):
        raise HTTPException(401, "wrong token")
    cookie, csrf = new_session(settings.api_token)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_MAX_AGE_S, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return {"auth_required": True, "signed_in": True, "csrf_token": csrf}


@router.delete(SIGN_IN_PATH, response_model=SessionState)
def sign_out(response: Response) -> dict:
    response.delete_cookie(SESSION_COOKIE, samesite="strict")
    return {"signed_in": False}
