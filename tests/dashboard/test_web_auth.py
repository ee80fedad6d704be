"""Login, logout, sessions, CSRF and bearer tokens through the real app and database."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from dashboard.auth import SESSION_COOKIE, token_hash
from dashboard.store import schema
from dashboard.web_auth import LOGIN_FAILED, LOGIN_LIMITED
from tests.support.web import (
    PASSWORD,
    add_token,
    add_user,
    app_of,
    dashboard_client,
    form_token,
    login,
    session_csrf,
)


def _engine(client: TestClient):  # type: ignore[no-untyped-def]
    return app_of(client).state.services.store.engine


def _session_cookie(response) -> str:  # type: ignore[no-untyped-def]
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    assert len(cookies) == 1, response.headers.get_list("set-cookie")
    return str(cookies[0])


def test_a_page_without_login_redirects_to_the_login_page_and_back(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "admin")
        r = client.get("/admin/organisation?x=1")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/admin/organisation%3Fx%3D1"
        page = client.get(r.headers["location"])
        assert page.status_code == 200
        assert 'name="next" value="/admin/organisation?x=1"' in page.text
        r = login(client, "ann", next_path="/admin/organisation?x=1")
        assert r.status_code == 303
        assert r.headers["location"] == "/admin/organisation?x=1"
        assert client.get("/admin/organisation").status_code == 200
        assert client.get("/login?next=/admin/organisation").headers["location"] == (
            "/admin/organisation"
        )


def test_an_api_call_without_login_gets_401_json(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        r = client.get("/api/v1/organisation")
        assert r.status_code == 401
        assert r.json() == {"detail": "login required"}
        assert r.headers["www-authenticate"] == "Bearer"


def test_session_cookie_is_httponly_lax_secure_and_stored_hashed(database_url: str) -> None:
    with dashboard_client(database_url, web={"session_hours": 2}) as client:
        add_user(client, "ann", "viewer")
        cookie = _session_cookie(login(client, "ann"))
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert {"httponly", "secure", "samesite=lax", "path=/", "max-age=7200"} <= set(flags)
        token = client.cookies[SESSION_COOKIE]
        with _engine(client).connect() as conn:
            row = conn.execute(select(schema.web_sessions)).one()
        assert row.token_hash == token_hash(token) != token
        assert (
            timedelta(hours=1.9) < row.expires_at - datetime.now(timezone.utc) <= timedelta(hours=2)
        )


def test_cookie_is_not_secure_when_configured_for_plain_http(database_url: str) -> None:
    with dashboard_client(database_url, web={"cookie_secure": False}) as client:
        add_user(client, "ann", "viewer")
        flags = _session_cookie(login(client, "ann")).lower()
        assert "secure" not in flags
        assert "httponly" in flags


def test_wrong_password_and_unknown_user_get_the_same_answer(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "viewer")
        wrong = login(client, "ann", "not the password at all")
        unknown = login(client, "nobody", PASSWORD)
        for r in (wrong, unknown):
            assert r.status_code == 401
            assert LOGIN_FAILED in r.text
            assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
        assert "nobody" not in unknown.text
        assert SESSION_COOKIE not in client.cookies


def test_login_form_without_its_csrf_token_is_refused(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "viewer")
        r = client.post("/login", data={"username": "ann", "password": PASSWORD, "next": "/"})
        assert r.status_code == 403
        assert SESSION_COOKIE not in client.cookies


def test_login_never_redirects_off_site(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "viewer")
        r = login(client, "ann", next_path="//evil.example/")
        assert r.status_code == 303
        assert r.headers["location"] == "/"


def test_failed_logins_are_limited_per_user_and_address(database_url: str) -> None:
    with dashboard_client(database_url, web={"login_attempts_per_minute": 3}) as client:
        add_user(client, "ann", "viewer")
        add_user(client, "bob", "viewer")
        for _ in range(3):
            assert login(client, "ann", "wrong password number").status_code == 401
        blocked = login(client, "ann")
        assert blocked.status_code == 429
        assert LOGIN_LIMITED in blocked.text
        assert SESSION_COOKIE not in client.cookies
        assert login(client, "bob").status_code == 303, "another user is not blocked"
        other = TestClient(
            app_of(client),
            base_url="https://testserver",
            follow_redirects=False,
            client=("192.0.2.7", 40000),
        )
        assert login(other, "ann").status_code == 303, "another address is not blocked"


def test_an_expired_session_no_longer_counts(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "admin")
        login(client, "ann")
        assert client.get("/api/v1/organisation").status_code == 200
        past = datetime.now(timezone.utc) - timedelta(seconds=1)
        with _engine(client).begin() as conn:
            conn.execute(update(schema.web_sessions).values(expires_at=past))
        assert client.get("/api/v1/organisation").status_code == 401
        assert client.get("/admin/organisation").status_code == 303
        login(client, "ann")
        with _engine(client).connect() as conn:
            rows = conn.execute(select(schema.web_sessions)).all()
        assert len(rows) == 1, "the expired session was swept at the next login"


def test_logout_deletes_the_session(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "admin")
        login(client, "ann")
        token = client.cookies[SESSION_COOKIE]
        r = client.post("/logout", data={"csrf_token": session_csrf(client)})
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        assert SESSION_COOKIE not in client.cookies
        with _engine(client).connect() as conn:
            assert conn.execute(select(schema.web_sessions)).first() is None
        client.cookies.set(SESSION_COOKIE, token)
        assert client.get("/admin/organisation").status_code == 303


def test_logout_without_csrf_token_is_refused(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "viewer")
        login(client, "ann")
        assert client.post("/logout").status_code == 403
        assert client.post("/logout", data={"csrf_token": "guess"}).status_code == 403
        with _engine(client).connect() as conn:
            assert conn.execute(select(schema.web_sessions)).first() is not None


def test_cookie_authenticated_api_writes_need_the_csrf_header(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "admin")
        login(client, "ann")
        body = {"sites": [{"id": "dc1"}]}
        assert client.put("/api/v1/organisation", json=body).status_code == 403
        bad = client.put("/api/v1/organisation", json=body, headers={"X-CSRF-Token": "x"})
        assert bad.status_code == 403
        good = client.put(
            "/api/v1/organisation", json=body, headers={"X-CSRF-Token": session_csrf(client)}
        )
        assert good.status_code == 200


def test_bearer_token_authenticates_api_calls_and_records_use(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ci", "admin")
        token = add_token(client, "ci", "deploy")
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/organisation", headers=headers).status_code == 200
        put = client.put("/api/v1/organisation", json={"sites": []}, headers=headers)
        assert put.status_code == 200, "no CSRF token needed: a browser never sends a bearer"
        with _engine(client).connect() as conn:
            row = conn.execute(select(schema.api_tokens)).one()
        assert row.token_hash == token_hash(token)
        assert row.last_used is not None


def test_revoked_wrong_and_malformed_tokens_are_refused(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ci", "viewer")
        token = add_token(client, "ci")
        with _engine(client).begin() as conn:
            conn.execute(update(schema.api_tokens).values(revoked=True))
        for header in (f"Bearer {token}", "Bearer lwt_not-a-token", "Basic Y2k6eA==", "Bearer"):
            r = client.get("/api/v1/organisation", headers={"Authorization": header})
            assert r.status_code == 401, header
            assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_disabled_user_loses_sessions_and_tokens(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "viewer")
        token = add_token(client, "ann")
        login(client, "ann")
        with _engine(client).begin() as conn:
            conn.execute(update(schema.users).values(disabled=True))
        assert client.get("/api/v1/organisation").status_code == 401
        r = client.get("/api/v1/organisation", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


def test_login_page_is_a_plain_form(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        page = client.get("/login")
        assert page.status_code == 200
        assert 'name="viewport"' in page.text
        assert 'type="password"' in page.text
        assert form_token(page.text)
        assert "Log out" not in page.text


def test_passwords_and_tokens_never_reach_the_log(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with dashboard_client(database_url) as client:
        add_user(client, "ann", "admin")
        token = add_token(client, "ann")
        login(client, "ann", "a wrong password 123")
        login(client, "ann")
        session = client.cookies[SESSION_COOKIE]
        client.get("/api/v1/organisation", headers={"Authorization": f"Bearer {token}"})
        client.get("/api/v1/organisation", headers={"Authorization": "Bearer lwt_guessed"})
    logged = caplog.text
    assert "logged in" in logged
    for secret in (PASSWORD, "a wrong password 123", token, session, "lwt_guessed"):
        assert secret not in logged


def test_openapi_documents_the_bearer_scheme(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert doc["paths"]["/api/v1/organisation"]["put"]["security"] == [{"token": []}]
    assert "/login" not in doc["paths"]
