"""Who is asking: users with hashed passwords, web sessions, API tokens and roles.

Pages authenticate with a server-side session (a random token in an HttpOnly cookie; only
its SHA-256 is stored, so a copy of the database opens no sessions). The API also accepts
``Authorization: Bearer <token>`` with a token made by ``liftwatch-dashboard create-token``.
Roles are ordered viewer < manager < admin; ``Depends(require("manager"))`` lets a manager
or an admin through. A request authenticated by its cookie that changes state must carry
the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``): a cookie
is sent by the browser whatever page started the request, a bearer token is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from markupsafe import Markup, escape
from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from dashboard.deps import ServicesDep
from dashboard.store import schema

ROLES = ("viewer", "manager", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}

SESSION_COOKIE = "liftwatch_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "lwt_"
MIN_PASSWORD_LENGTH = 10
LAST_USED_EVERY = timedelta(minutes=1)
"""A token's ``last_used`` is written at most this often: no database write per API call."""

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_MAXMEM = 128 * 1024 * 1024


class AuthError(ValueError):
    """A user or token cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``csrf_token`` is None for a bearer token (no cookie, no CSRF)."""

    user_id: int
    username: str
    role: str
    csrf_token: str | None
    via: Literal["session", "token"]

    def has_role(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# Passwords


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash``: the parameters travel with the hash so they can be raised."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        n_i, r_i, p_i = int(n), int(r), int(p)
        expected = base64.b64decode(digest)
        salt_b = base64.b64decode(salt)
    except ValueError:
        return False
    if kind != "scrypt" or not (2 <= n_i <= 2**20 and 1 <= r_i <= 32 and 1 <= p_i <= 16):
        return False
    try:
        actual = _scrypt(password, salt_b, n_i, r_i, p_i, len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def password_problem(password: str, username: str) -> str | None:
    """Why ``password`` is too weak to accept, or None."""
    if not password.strip():
        return "the password is empty"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is shorter than {MIN_PASSWORD_LENGTH} characters"
    if username.lower() in password.lower():
        return "the password contains the user name"
    if len(set(password)) < 4:
        return "the password repeats too few different characters"
    return None


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = 32) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=dklen
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    """Verified against for an unknown user, so the answer takes as long as for a known one."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


# Users


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AuthError(
            f"invalid user name {username!r}: 1-64 of a-z 0-9 . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def create_user(conn: Connection, username: str, password: str, role: str) -> User:
    name = normalise_username(username)
    if role not in _RANK:
        raise AuthError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    problem = password_problem(password, name)
    if problem is not None:
        raise AuthError(problem)
    if find_user(conn, name) is not None:
        raise AuthError(f"user {name!r} exists already")
    now = utcnow()
    insert = (
        schema.users.insert()
        .values(
            username=name,
            password_hash=hash_password(password),
            role=role,
            disabled=False,
            created_at=now,
        )
        .returning(schema.users.c.id)
    )
    try:
        with conn.begin_nested():
            user_id = conn.execute(insert).scalar_one()
    except IntegrityError:
        raise AuthError(f"user {name!r} exists already") from None
    return User(id=int(user_id), username=name, role=role, disabled=False, created_at=now)


def find_user(conn: Connection, username: str) -> User | None:
    row = conn.execute(
        select(schema.users).where(schema.users.c.username == username.strip().lower())
    ).first()
    if row is None:
        return None
    return User(
        id=row.id,
        username=row.username,
        role=row.role,
        disabled=row.disabled,
        created_at=row.created_at,
    )


def set_password(conn: Connection, username: str, password: str) -> None:
    """A new password; the user's open sessions end (whoever knew the old one is out)."""
    user = find_user(conn, username)
    if user is None:
        raise AuthError(f"no user {username!r}")
    problem = password_problem(password, user.username)
    if problem is not None:
        raise AuthError(problem)
    conn.execute(
        update(schema.users)
        .where(schema.users.c.id == user.id)
        .values(password_hash=hash_password(password))
    )
    conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.user_id == user.id))


def set_disabled(conn: Connection, username: str, disabled: bool) -> None:
    """Disable (or enable again) a user: no login; sessions end; tokens stop working."""
    user = find_user(conn, username)
    if user is None:
        raise AuthError(f"no user {username!r}")
    conn.execute(update(schema.users).where(schema.users.c.id == user.id).values(disabled=disabled))
    if disabled:
        conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.user_id == user.id))


def list_users(conn: Connection) -> list[User]:
    rows = conn.execute(select(schema.users).order_by(schema.users.c.username)).all()
    return [User(r.id, r.username, r.role, r.disabled, r.created_at) for r in rows]


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user when the password is theirs and the account is enabled, else None.

    A name no user can have (a NUL, which PostgreSQL refuses even in a query) is not looked up."""
    name = username.strip().lower()
    row = None
    if _USERNAME.fullmatch(name):
        row = conn.execute(select(schema.users).where(schema.users.c.username == name)).first()
    if row is None:
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, row.password_hash) or row.disabled:
        return None
    return User(row.id, row.username, row.role, row.disabled, row.created_at)


# Sessions


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(conn: Connection, user_id: int, hours: float) -> tuple[str, str]:
    """A new session for the user: (cookie token, CSRF token). Expired sessions are swept."""
    now = utcnow()
    conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.expires_at <= now))
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        schema.web_sessions.insert().values(
            token_hash=token_hash(token),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return token, csrf


def session_principal(conn: Connection, token: str) -> Principal | None:
    s, u = schema.web_sessions, schema.users
    row = conn.execute(
        select(u.c.id, u.c.username, u.c.role, s.c.csrf_token)
        .join(u, u.c.id == s.c.user_id)
        .where(
            s.c.token_hash == token_hash(token),
            s.c.expires_at > utcnow(),
            u.c.disabled.is_(False),
        )
    ).first()
    if row is None:
        return None
    return Principal(row.id, row.username, row.role, row.csrf_token, "session")


def end_session(conn: Connection, token: str) -> None:
    conn.execute(
        delete(schema.web_sessions).where(schema.web_sessions.c.token_hash == token_hash(token))
    )


# API tokens


@dataclass(frozen=True)
class ApiToken:
    id: int
    username: str
    name: str
    created_at: datetime
    last_used: datetime | None
    revoked: bool


def create_token(conn: Connection, username: str, name: str) -> tuple[ApiToken, str]:
    """A new bearer token for ``username``: (its record, the token, shown only now)."""
    user = find_user(conn, username)
    if user is None:
        raise AuthError(f"no user {username!r}")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise AuthError("a token name is 1-100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token_id = conn.execute(
        schema.api_tokens.insert()
        .values(
            token_hash=token_hash(token), user_id=user.id, name=name, created_at=now, revoked=False
        )
        .returning(schema.api_tokens.c.id)
    ).scalar_one()
    return ApiToken(int(token_id), user.username, name, now, None, False), token


def list_tokens(conn: Connection) -> list[ApiToken]:
    t, u = schema.api_tokens, schema.users
    rows = conn.execute(
        select(t, u.c.username).join(u, u.c.id == t.c.user_id).order_by(u.c.username, t.c.id)
    ).all()
    return [ApiToken(r.id, r.username, r.name, r.created_at, r.last_used, r.revoked) for r in rows]


def revoke_token(conn: Connection, token_id: int) -> bool:
    """Revoke a token by its id; False when there is no such token."""
    result = conn.execute(
        update(schema.api_tokens).where(schema.api_tokens.c.id == token_id).values(revoked=True)
    )
    return result.rowcount > 0


def token_principal(conn: Connection, token: str) -> Principal | None:
    t, u = schema.api_tokens, schema.users
    row = conn.execute(
        select(t.c.id, t.c.last_used, u.c.id.label("user_id"), u.c.username, u.c.role)
        .join(u, u.c.id == t.c.user_id)
        .where(t.c.token_hash == token_hash(token), t.c.revoked.is_(False))
        .where(u.c.disabled.is_(False))
    ).first()
    if row is None:
        return None
    now = utcnow()
    if row.last_used is None or now - row.last_used >= LAST_USED_EVERY:
        conn.execute(update(t).where(t.c.id == row.id).values(last_used=now))
    return Principal(row.user_id, row.username, row.role, None, "token")


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(schema.users)).scalar_one())


# Login rate limit


class LoginLimiter:
    """At most ``per_minute`` failed logins per (user name, client address) in any minute.

    Kept in the database, so the web processes of one site (several ``serve`` workers over
    one PostgreSQL) share one limit instead of each granting its own."""

    def __init__(
        self, engine: Engine, per_minute: int, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._engine = engine
        self._limit = per_minute
        self._clock = clock

    def blocked(self, username: str, address: str) -> bool:
        t = schema.login_failures
        since = self._clock() - LOGIN_WINDOW
        with self._engine.connect() as conn:
            n = conn.execute(
                select(func.count()).where(
                    t.c.key_hash == _login_key(username, address), t.c.at > since
                )
            ).scalar_one()
        return int(n) >= self._limit

    def failed(self, username: str, address: str) -> None:
        t = schema.login_failures
        now = self._clock()
        with self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.at <= now - LOGIN_WINDOW))
            conn.execute(t.insert().values(key_hash=_login_key(username, address), at=now))

    def succeeded(self, username: str, address: str) -> None:
        t = schema.login_failures
        with self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.key_hash == _login_key(username, address)))


LOGIN_WINDOW = timedelta(minutes=1)


def _login_key(username: str, address: str) -> str:
    text = f"{username.strip().lower()}\n{address}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# Request dependencies


def is_page_request(request: Request) -> bool:
    """A browser page (redirect to the login page) rather than an API call (401 JSON)."""
    return not request.url.path.startswith("/api/")


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/``: no open redirect via ``next``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 0x20 or ch == "\\" for ch in target):
        return "/"
    return target


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(safe_next(here), safe="/")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(
            401, "use Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
        )
    return value.strip()


_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token from `liftwatch-dashboard create-token`; pages use the session cookie.",
)
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)]


def current_principal(request: Request, services: ServicesDep, _doc: BearerDoc) -> Principal | None:
    """The caller if authenticated (bearer token first, then session cookie), else None.

    An invalid bearer token is an error rather than anonymous: the caller meant to log in.
    ``_doc`` only puts the bearer scheme into the OpenAPI document."""
    bearer = _bearer(request)
    if bearer is not None:
        with services.store.engine.begin() as conn:
            principal = token_principal(conn, bearer)
        if principal is None:
            raise HTTPException(
                401,
                "invalid or revoked token",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with services.store.engine.connect() as conn:
            return session_principal(conn, cookie)
    return None


async def check_csrf(request: Request, principal: Principal) -> None:
    """Refuse a state-changing request authenticated by cookie without the session's token."""
    if principal.via != "session" or request.method in _SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    expected = principal.csrf_token or ""
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")


MaybePrincipal = Annotated[Principal | None, Depends(current_principal)]


def require(role: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency giving the `Principal` with at least ``role``.

    Not logged in: a page redirects to ``/login?next=...``, an API call gets 401. Too low a
    role: 403. A cookie-authenticated POST/PUT/PATCH/DELETE must carry the CSRF token."""
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")

    async def dependency(request: Request, principal: MaybePrincipal) -> Principal:
        if principal is None:
            if is_page_request(request):
                raise HTTPException(303, "login required", {"Location": login_url(request)})
            raise HTTPException(401, "login required", {"WWW-Authenticate": "Bearer"})
        if not principal.has_role(role):
            raise HTTPException(403, f"needs the {role} role")
        await check_csrf(request, principal)
        return principal

    return dependency


def csrf_field(principal: Principal | None) -> Markup:
    """The hidden form field carrying the session's CSRF token (for every POST form)."""
    if principal is None or principal.csrf_token is None:
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, escape(principal.csrf_token)
    )
