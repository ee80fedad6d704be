"""schemathesis against the dashboard's own OpenAPI document: no request makes it answer 5xx.

Every documented operation gets valid and invalid requests generated from its schema, sent
to a running app over a seeded database once with an admin's bearer token and once without
credentials. Admin requests may change the organisation and the alert rules; later requests
then meet whatever the fuzzer left behind, as a real dashboard would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from dashboard.app import create_app
from dashboard.config import complete
from tests.support.db import postgres_database, server_available
from tests.support.seed import seed, week
from tests.support.web import add_token, add_user, dashboard_client

EXAMPLES = 20 * int(os.environ.get("LIFTWATCH_FUZZ_SCALE", "1"))
"""Per operation and database: enough to reach every parameter in modest time; a longer run
multiplies it by ``LIFTWATCH_FUZZ_SCALE``."""


def _schema() -> Any:
    cfg = complete({"database_url": "sqlite://", "mqtt": {"enabled": False}}, None, env={})
    return schemathesis.openapi.from_dict(create_app(cfg, ingest=False).openapi())


PUBLIC = {"/healthz"}
SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, str]]:
    """A dashboard over a week of lifts, and an admin's bearer token."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'liftwatch.db'}"
        yield from _started(url)
        return
    problem = server_available()
    if problem is not None:
        pytest.skip(f"no PostgreSQL server: {problem}")
    with postgres_database() as url:
        yield from _started(url)


def _started(url: str) -> Iterator[tuple[TestClient, str]]:
    seed(url, week())
    with dashboard_client(url) as client:
        add_user(client, "fuzz-admin", "admin")
        yield client, add_token(client, "fuzz-admin")


def send(client: TestClient, case: Any, token: str | None) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    headers = {k: v for k, v in kwargs.pop("headers").items() if k.lower() != "authorization"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs.pop("json")
    if "data" in kwargs:
        data = kwargs.pop("data")
        body["content" if isinstance(data, bytes | str) else "data"] = data
    return client.request(
        kwargs.pop("method"),
        kwargs.pop("url"),
        params=kwargs.pop("params", None),
        cookies=kwargs.pop("cookies", None) or None,
        headers=headers,
        **body,
    )


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_no_request_makes_the_api_fail(operation: Any, fuzzed: tuple[TestClient, str]) -> None:
    client, token = fuzzed
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, as_admin=st.booleans())
    def check(case: Any, as_admin: bool) -> None:
        response = send(client, case, token if as_admin else None)
        assert response.status_code < 500, (
            f"{case.method} {response.request.url} as {'admin' if as_admin else 'anonymous'}: "
            f"{response.status_code} {response.text[:500]}"
        )
        case.validate_response(response, checks=[not_a_server_error])
        if not as_admin and operation.path not in PUBLIC:
            # a malformed request may be refused (400, 422) before the caller is looked at
            assert 400 <= response.status_code < 500, response

    check()
