"""The login and logout pages.

The login form carries its own CSRF token, matched against a short-lived cookie (there is
no session yet to hold one), so another site cannot log a browser into an attacker's
account. Every failed login answers with the same message and status whether the user
exists or not.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dashboard.auth import (
    SESSION_COOKIE,
    LoginLimiter,
    MaybePrincipal,
    Principal,
    authenticate,
    csrf_field,
    end_session,
    require,
    safe_next,
    start_session,
)
from dashboard.config import WebConfig
from dashboard.deps import ServicesDep

log = logging.getLogger("liftwatch.dashboard.auth")

LOGIN_CSRF_COOKIE = "liftwatch_login"
LOGIN_FAILED = "Wrong user name or password."
LOGIN_LIMITED = "Too many failed logins. Wait a minute and try again."

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["csrf_field"] = csrf_field

router = APIRouter(include_in_schema=False)
_limiter_lock = threading.Lock()


def _limiter(services: ServicesDep) -> LoginLimiter:
    with _limiter_lock:
        limiter = services.extras.get("login_limiter")
        if limiter is None:
            limiter = LoginLimiter(
                services.store.engine, services.config.web.login_attempts_per_minute
            )
            services.extras["login_limiter"] = limiter
        return limiter


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(
    request: Request, web: WebConfig, next_path: str, error: str | None, status: int
) -> Response:
    token = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"user": None, "next": next_path, "error": error, "login_csrf": token},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=web.cookie_secure,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, services: ServicesDep, principal: MaybePrincipal, next: str = "/"
) -> Response:
    if principal is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, services.config.web, safe_next(next), None, 200)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    services: ServicesDep,
    limiter: Annotated[LoginLimiter, Depends(_limiter)],
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    web = services.config.web
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return _login_page(request, web, target, "The form expired; please log in again.", 403)
    address = _address(request)
    if limiter.blocked(username, address):
        log.warning("login refused: too many failures from %s", address)
        return _login_page(request, web, target, LOGIN_LIMITED, 429)
    with services.store.engine.begin() as conn:
        user = authenticate(conn, username, password)
        session = start_session(conn, user.id, web.session_hours) if user else None
    if user is None or session is None:
        limiter.failed(username, address)
        log.info("failed login from %s", address)
        return _login_page(request, web, target, LOGIN_FAILED, 401)
    limiter.succeeded(username, address)
    log.info("user %s logged in from %s", user.username, address)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session[0],
        max_age=int(web.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=web.cookie_secure,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(require("viewer"))],
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and principal.via == "session":
        with services.store.engine.begin() as conn:
            end_session(conn, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=services.config.web.cookie_secure,
    )
    return response
