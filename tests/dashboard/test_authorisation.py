"""Every route of the app, tried as anonymous, viewer, manager and admin, by bearer token and
by session cookie: only the roles the table below intends get through.

The routes come from the app itself, so a new route fails this test until someone decides
who may use it and adds it to `MINIMUM_ROLE`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from dashboard.auth import CSRF_HEADER, ROLES, SESSION_COOKIE, start_session
from dashboard.store import schema
from tests.dashboard.alerts.test_api import raise_alerts
from tests.support.web import add_token, add_user, app_of, dashboard_client, form_token

PUBLIC = "public"
MINIMUM_ROLE: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # Prometheus scrapes counters: no lift, no name
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/static/{name}"): PUBLIC,
    ("POST", "/logout"): "viewer",
    ("GET", "/"): "viewer",
    ("GET", "/teams/{site}/{team}"): "viewer",
    ("GET", "/cameras"): "viewer",
    ("GET", "/lifts"): "viewer",
    ("GET", "/alerts"): "viewer",
    ("GET", "/alert-rules"): "viewer",
    ("GET", "/api/v1/organisation"): "viewer",
    ("GET", "/api/v1/metrics"): "viewer",
    ("GET", "/api/v1/metrics.csv"): "viewer",
    ("GET", "/api/v1/metrics/daily"): "viewer",
    ("GET", "/api/v1/lifts"): "viewer",
    ("GET", "/api/v1/cameras"): "viewer",
    ("GET", "/api/v1/alerts"): "viewer",
    ("GET", "/api/v1/alerts/{alert_id}"): "viewer",
    ("GET", "/api/v1/alert-rules"): "viewer",
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): "manager",
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): "manager",
    ("POST", "/alerts/{alert_id}/acknowledge"): "manager",
    ("POST", "/alerts/{alert_id}/resolve"): "manager",
    ("PUT", "/api/v1/organisation"): "admin",
    ("GET", "/admin/organisation"): "admin",
    ("POST", "/admin/organisation"): "admin",
    ("PUT", "/api/v1/alert-rules"): "admin",
    ("PUT", "/api/v1/alert-rules/{rule_id}"): "admin",
    ("DELETE", "/api/v1/alert-rules/{rule_id}"): "admin",
    ("POST", "/alert-rules"): "admin",
    ("POST", "/alert-rules/{rule_id}/delete"): "admin",
}
RULE = {"id": "matrix", "kind": "rate", "scope": "zone", "count": 4, "window_min": 5}
PATH_VALUES = {"site": "s1", "team": "red", "name": "style.css", "rule_id": "matrix"}


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, HEAD aside (it follows GET)."""
    if hasattr(fastapi.routing, "iter_route_contexts"):  # FastAPI with nested routers
        found = list(fastapi.routing.iter_route_contexts(app.routes))
    else:
        found = list(app.routes)
    return {
        (method, route.path)
        for route in found
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }


@dataclass(frozen=True)
class Caller:
    role: str | None
    via: str  # "bearer", "cookie" or "none"


CALLERS = [Caller(None, "none")] + [Caller(r, v) for r in ROLES for v in ("bearer", "cookie")]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('authz') / 'liftwatch.db'}"
    with dashboard_client(url) as client:
        raise_alerts(client, ["c1"])
        for role in ROLES:
            add_user(client, role, role)
        yield client


def _alert_id(client: TestClient) -> int:
    with app_of(client).state.services.store.engine.connect() as conn:
        return int(conn.execute(select(schema.alerts.c.id)).scalars().first())


def _request(client: TestClient, method: str, path: str) -> dict[str, Any]:
    """A well-formed request for the route, so that only who asks decides the answer."""
    url = path.format(**PATH_VALUES, alert_id=_alert_id(client))
    body: dict[str, Any] = {}
    if (method, path) == ("PUT", "/api/v1/organisation"):
        body["json"] = {"sites": [{"id": "s1", "teams": [{"id": "red"}]}]}
    elif (method, path) == ("POST", "/admin/organisation"):
        body["data"] = {"organisation": yaml.safe_dump({"sites": [{"id": "s1"}]})}
    elif (method, path) == ("PUT", "/api/v1/alert-rules"):
        body["json"] = [RULE]
    elif (method, path) == ("PUT", "/api/v1/alert-rules/{rule_id}"):
        body["json"] = RULE
    elif (method, path) == ("POST", "/alert-rules"):
        body["data"] = {k: str(v) for k, v in RULE.items()}
    elif path.startswith("/alerts/"):
        body["data"] = {"back": "open"}
    elif (method, path) == ("POST", "/login"):
        page = client.get("/login")
        body["data"] = {"username": "viewer", "password": "wrong password 1",
                        "csrf_token": form_token(page.text)}  # fmt: skip
    return {"method": method, "url": url, **body}


def _credentials(client: TestClient, caller: Caller, tokens: dict[str, str]) -> dict[str, str]:
    if caller.role is None:
        return {}
    if caller.via == "bearer":
        return {"Authorization": f"Bearer {tokens[caller.role]}"}
    store = app_of(client).state.services.store
    with store.engine.begin() as conn:
        user_id = conn.execute(
            select(schema.users.c.id).where(schema.users.c.username == caller.role)
        ).scalar_one()
        session, csrf = start_session(conn, user_id, 1.0)
    return {"Cookie": f"{SESSION_COOKIE}={session}", CSRF_HEADER: csrf}


def refused(response: httpx.Response) -> bool:
    if response.status_code in (401, 403):
        return True
    location = response.headers.get("location", "")
    return response.status_code == 303 and location.startswith("/login?")


def test_the_table_names_every_route_of_the_app(client: TestClient) -> None:
    served = routes(app_of(client))
    assert served - MINIMUM_ROLE.keys() == set(), "routes nobody decided who may use"
    assert MINIMUM_ROLE.keys() - served == set(), "the table lists routes that are gone"


@pytest.mark.parametrize(("method", "path"), sorted(MINIMUM_ROLE))
def test_only_the_intended_roles_get_through(client: TestClient, method: str, path: str) -> None:
    minimum = MINIMUM_ROLE[(method, path)]
    tokens = {role: add_token(client, role, f"{method} {path}") for role in ROLES}
    outcomes = {}
    for caller in CALLERS:
        client.cookies.clear()
        headers = _credentials(client, caller, tokens)
        request = _request(client, method, path)
        response = client.request(**request, headers=headers)
        assert response.status_code < 500, (caller, response.status_code, response.text[:300])
        assert response.status_code != 422, (caller, "the request itself was wrong", response.text)
        allowed = minimum == PUBLIC or (
            caller.role is not None and ROLES.index(caller.role) >= ROLES.index(minimum)
        )
        outcomes[(caller.role, caller.via)] = response.status_code
        if minimum == PUBLIC:
            assert response.status_code not in (401, 403) or path == "/login", outcomes
        else:
            assert refused(response) != allowed, (caller, outcomes)
    if minimum != PUBLIC:
        assert outcomes[(None, "none")] in (401, 303), "anonymous callers are asked to log in"


@pytest.mark.parametrize(
    ("method", "path"), sorted(k for k, v in MINIMUM_ROLE.items() if k[0] != "GET" and v != PUBLIC)
)
def test_a_cookie_without_the_csrf_token_changes_nothing(
    client: TestClient, method: str, path: str
) -> None:
    """An admin's browser, sent by another site's page: the cookie comes, the token does not."""
    headers = _credentials(client, Caller("admin", "cookie"), {})
    del headers[CSRF_HEADER]
    client.cookies.clear()
    response = client.request(**_request(client, method, path), headers=headers)
    assert response.status_code == 403, response.text[:300]
