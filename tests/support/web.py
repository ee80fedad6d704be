"""A dashboard app over a real database for web tests, with users and logged-in clients.

The client talks HTTPS (``https://testserver``) so the session cookie keeps its default
``Secure`` flag and is still sent back, as a browser behind TLS would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from dashboard.app import create_app
from dashboard.auth import SESSION_COOKIE, create_token, create_user, token_hash
from dashboard.config import complete
from dashboard.store.schema import web_sessions

PASSWORD = "correct horse battery"


@contextmanager
def dashboard_client(
    database_url: str, web: dict[str, Any] | None = None, **config: Any
) -> Iterator[TestClient]:
    """A started app (no MQTT ingest) and a client; ``client.app`` is the FastAPI app."""
    cfg = complete(
        {"database_url": database_url, "mqtt": {"enabled": False}, "web": web or {}, **config},
        None,
        env={},
    )
    app = create_app(cfg, ingest=False)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def app_of(client: TestClient) -> FastAPI:
    return client.app  # type: ignore[return-value]


def add_user(client: TestClient, username: str, role: str, password: str = PASSWORD) -> None:
    with app_of(client).state.services.store.engine.begin() as conn:
        create_user(conn, username, password, role)


def add_token(client: TestClient, username: str, name: str = "test") -> str:
    with app_of(client).state.services.store.engine.begin() as conn:
        return create_token(conn, username, name)[1]


def form_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def login(
    client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/"
) -> httpx.Response:
    """Post the login form as a browser would; returns the response (303 on success)."""
    page = client.get("/login", params={"next": next_path})
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": form_token(page.text),
            "next": next_path,
        },
    )


def session_csrf(client: TestClient) -> str:
    """The CSRF token of the client's current session, as its pages would carry it."""
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie, "the client is not logged in"
    with app_of(client).state.services.store.engine.connect() as conn:
        return str(
            conn.execute(
                select(web_sessions.c.csrf_token).where(
                    web_sessions.c.token_hash == token_hash(cookie)
                )
            ).scalar_one()
        )
