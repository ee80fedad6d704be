"""The pages are not in the OpenAPI document, so schemathesis does not reach them: every GET
route's query and path parameters (read from the route) get odd values from hypothesis,
as an admin, on SQLite and PostgreSQL. No answer may be a 5xx.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import fastapi.routing
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.db import postgres_database, server_available
from tests.support.seed import seed, week
from tests.support.web import add_token, add_user, app_of, dashboard_client

EXAMPLES = 25 * int(os.environ.get("LIFTWATCH_FUZZ_SCALE", "1"))
ODD = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.integers(min_value=2**31 - 2, max_value=2**80).map(str),
    st.sampled_from(["", "s1", "red", "dock", "c1", "early", "rounded", "side", "all", "-1",
                     "0", "1e400", "nan", "2026-03-02", "0001-01-01", "9999-12-31",
                     "2026-03-02T25:00", "2026-02-30", "../../etc/passwd", "%", "\u202e"]),
)  # fmt: skip
SEGMENT = ODD.filter(lambda v: v not in ("", ".", ".."))
"""A path parameter's value, percent-encoded into one segment."""


def parameters(client: TestClient, method: str = "GET") -> dict[str, tuple[list[str], list[str]]]:
    """Path of each ``method`` route → (query or form field names, path parameter names)."""
    app = app_of(client)
    if hasattr(fastapi.routing, "iter_route_contexts"):
        found = [
            (c.path, c.original_route) for c in fastapi.routing.iter_route_contexts(app.routes)
        ]
    else:
        found = [(getattr(r, "path", ""), r) for r in app.routes]
    out = {}
    for path, route in found:
        dependant = getattr(route, "dependant", None)
        if dependant is not None and method in (getattr(route, "methods", None) or ()):
            fields = _queries(dependant) if method == "GET" else _form_fields(dependant)
            out[path] = (fields, [p.name for p in dependant.path_params])
    return out


def _queries(dependant: Any) -> list[str]:
    names = [p.alias for p in dependant.query_params]
    return names + [n for sub in dependant.dependencies for n in _queries(sub)]


def _form_fields(dependant: Any) -> list[str]:
    return [p.alias for p in dependant.body_params]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def admin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    if request.param == "sqlite":
        yield from _started(f"sqlite:///{tmp_path_factory.mktemp('pages') / 'liftwatch.db'}")
        return
    problem = server_available()
    if problem is not None:
        pytest.skip(f"no PostgreSQL server: {problem}")
    with postgres_database() as url:
        yield from _started(url)


def _started(url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    seed(url, week())
    with dashboard_client(url) as client:
        add_user(client, "admin", "admin")
        yield client, {"Authorization": f"Bearer {add_token(client, 'admin')}"}


def fuzz(
    client: TestClient,
    headers: dict[str, str],
    template: str,
    fields: list[str],
    names: list[str],
    method: str = "GET",
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        data=st.fixed_dictionaries({}, optional={f: ODD for f in fields}),
        values=st.fixed_dictionaries({p: SEGMENT for p in names}),
    )
    def check(data: dict[str, str], values: dict[str, str]) -> None:
        url = template.format(**{k: quote(v, safe="") for k, v in values.items()})
        if method == "GET":
            response = client.get(url, params=data, headers=headers)
        else:
            response = client.request(method, url, data=data, headers=headers)
        assert response.status_code < 500, (url, data, response.text[:300])

    check()


def test_odd_parameters_on_every_get_route_never_make_a_server_error(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = admin
    found = parameters(client)
    tried = [(t, q, n) for t, (q, n) in sorted(found.items()) if q or n]
    assert len(tried) >= 15, tried
    for template, queries, names in tried:
        fuzz(client, headers, template, queries, names)


def test_odd_form_fields_on_every_page_post_never_make_a_server_error(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    """The forms of the pages (login, organisation YAML, alert rules, alert buttons)."""
    client, headers = admin
    forms = {t: v for t, v in parameters(client, "POST").items() if not t.startswith("/api/")}
    assert len(forms) >= 6, forms
    for template, (fields, names) in sorted(forms.items()):
        if template != "/logout":
            fuzz(client, headers, template, fields, names, "POST")
