"""A NUL anywhere a request can carry one is refused, never passed to PostgreSQL (a 500).

Found by schemathesis (``?site=%00``) and then looked for on every way in: URL path and
query, the login form, and the organisation's free-text labels.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.web import add_token, add_user, dashboard_client, form_token


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/v1/metrics?site=%00"),
        ("GET", "/api/v1/metrics.csv?team=a%00b"),
        ("GET", "/api/v1/lifts?camera=%00&cursor=x"),
        ("GET", "/teams/%00/red"),
        ("GET", "/lifts?site=s1%00"),
        ("DELETE", "/api/v1/alert-rules/%00"),
        ("GET", "/login?next=/%00"),
    ],
)
def test_a_nul_in_the_url_is_a_bad_request(database_url: str, method: str, url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "admin", "admin")
        headers = {"Authorization": f"Bearer {add_token(client, 'admin')}"}
        assert client.request(method, url, headers=headers).status_code == 400


def test_a_nul_in_the_login_name_is_a_failed_login(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        page = client.get("/login")
        answer = client.post(
            "/login",
            data={"username": "ad\x00min", "password": "x", "csrf_token": form_token(page.text)},
        )
        assert answer.status_code == 401


def test_organisation_labels_refuse_control_characters(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "admin", "admin")
        headers = {"Authorization": f"Bearer {add_token(client, 'admin')}"}
        for name in ("a\x00b", "line\nbreak"):
            org = {"sites": [{"id": "s1", "name": name, "teams": [{"id": "t", "name": "ok"}]}]}
            assert client.put("/api/v1/organisation", json=org, headers=headers).status_code == 422
        org = {"sites": [{"id": "s1", "name": "Lager Süd – Halle 2"}]}
        assert client.put("/api/v1/organisation", json=org, headers=headers).status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(database_url: str) -> None:
    """By Content-Length, and for a chunked upload (no length) once the bytes pass it."""
    with dashboard_client(database_url) as client:
        add_user(client, "admin", "admin")
        headers = {"Authorization": f"Bearer {add_token(client, 'admin')}"}
        limit = 1024 * 1024
        big = b'{"sites": [' + b" " * limit + b"]}"
        answer = client.put("/api/v1/organisation", content=big, headers=headers)
        assert answer.status_code == 413 and "larger than" in answer.text

        def chunks() -> Iterator[bytes]:
            yield b'{"sites": ['
            for _ in range(2 * limit // 65536):
                yield b" " * 65536
            yield b"]}"

        answer = client.put("/api/v1/organisation", content=chunks(), headers=headers)
        assert answer.status_code == 413
        org = {"sites": [{"id": "s1", "name": "ok"}]}  # a normal body still goes through
        assert client.put("/api/v1/organisation", json=org, headers=headers).status_code == 200
        assert client.get("/api/v1/organisation", headers=headers).json()["sites"][0]["id"] == "s1"
