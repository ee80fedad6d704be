"""Reading and editing the organisation over the API and the admin page, per role."""

from __future__ import annotations

from datetime import datetime, timezone
from html import unescape

import pytest
import yaml
from fastapi.testclient import TestClient

from dashboard.org import Organisation
from dashboard.store.organisation import load_organisation, replace_organisation
from tests.support.web import add_token, add_user, app_of, dashboard_client, form_token, login

ORG = {
    "sites": [
        {
            "id": "dc1",
            "name": "Central DC",
            "timezone": "Europe/Berlin",
            "shifts": [
                {"name": "early", "start": "06:00", "end": "14:00"},
                {"name": "late", "start": "14:00", "end": "22:00"},
                {"name": "night", "start": "22:00", "end": "06:00"},
            ],
            "zones": [{"id": "inbound"}, {"id": "picking"}],
            "teams": [{"id": "blue"}, {"id": "green"}],
            "cameras": [{"id": "cam1", "zone": "inbound", "team": "blue"}],
        }
    ]
}


def _moved(team: str, zone: str) -> dict[str, object]:
    site = {**ORG["sites"][0], "cameras": [{"id": "cam1", "zone": zone, "team": team}]}
    return {"sites": [site]}


def _replace(client: TestClient, org: dict[str, object]) -> None:
    with app_of(client).state.services.store.engine.begin() as conn:
        replace_organisation(conn, Organisation.model_validate(org))


def _bearer(client: TestClient, role: str) -> dict[str, str]:
    add_user(client, role, role)
    return {"Authorization": f"Bearer {add_token(client, role)}"}


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [("viewer", 200, 403), ("manager", 200, 403), ("admin", 200, 200)],
)
def test_api_roles(database_url: str, role: str, read: int, write: int) -> None:
    with dashboard_client(database_url) as client:
        headers = _bearer(client, role)
        assert client.get("/api/v1/organisation", headers=headers).status_code == read
        put = client.put("/api/v1/organisation", json=ORG, headers=headers)
        assert put.status_code == write
        if write == 403:
            assert put.json() == {"detail": "needs the admin role"}


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("manager", 403), ("admin", 200)])
def test_admin_page_roles(database_url: str, role: str, status: int) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "someone", role)
        login(client, "someone")
        assert client.get("/admin/organisation").status_code == status
        post = client.post("/admin/organisation", data={"organisation": "sites: []\n"})
        assert post.status_code == 403


def test_put_replaces_the_organisation_and_moves_a_camera_at_once(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        headers = _bearer(client, "admin")
        directory = app_of(client).state.services.org
        at = datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)
        assert client.put("/api/v1/organisation", json=ORG, headers=headers).status_code == 200
        first = directory.directory().place("dc1", "cam1", at)
        assert (first.team, first.zone, first.shift) == ("blue", "inbound", "night")
        r = client.put("/api/v1/organisation", json=_moved("green", "picking"), headers=headers)
        assert r.status_code == 200
        assert r.json()["sites"][0]["cameras"] == [
            {"id": "cam1", "zone": "picking", "team": "green", "name": None}
        ]
        moved = directory.directory().place("dc1", "cam1", at)
        assert (moved.team, moved.zone) == ("green", "picking")
        got = client.get("/api/v1/organisation", headers=headers).json()
        assert Organisation.model_validate(got) == Organisation.model_validate(
            _moved("green", "picking")
        )


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"timezone": "Mars/Olympus"}, ["body", "sites", 0, "timezone"], "unknown time zone"),
        ({"colour": "red"}, ["body", "sites", 0, "colour"], "Extra inputs"),
        (
            {"cameras": [{"id": "cam1", "zone": "roof"}]},
            ["body", "sites", 0],
            "zone 'roof' is not listed",
        ),
        (
            {"shifts": [{"name": "a", "start": "06:00", "end": "25:00"}]},
            ["body", "sites", 0, "shifts", 0, "end"],
            "not a time of day",
        ),
        (
            {"shifts": [{"name": "a", "start": "06:00", "end": "14:00"}] * 2},
            ["body", "sites", 0],
            "listed twice",
        ),
    ],
)
def test_put_refuses_an_invalid_organisation_with_field_errors(
    database_url: str, change: dict[str, object], where: list[object], message: str
) -> None:
    with dashboard_client(database_url) as client:
        headers = _bearer(client, "admin")
        client.put("/api/v1/organisation", json=ORG, headers=headers)
        bad = {"sites": [{**ORG["sites"][0], **change}]}
        r = client.put("/api/v1/organisation", json=bad, headers=headers)
        assert r.status_code == 422
        errors = r.json()["detail"]
        assert any(e["loc"] == where and message in e["msg"] for e in errors), errors
        kept = client.get("/api/v1/organisation", headers=headers).json()
        assert Organisation.model_validate(kept) == Organisation.model_validate(ORG)


def _admin_page(client: TestClient) -> str:
    add_user(client, "boss", "admin")
    login(client, "boss")
    page = client.get("/admin/organisation")
    assert page.status_code == 200
    return page.text


def test_admin_page_shows_yaml_that_saves_back_unchanged(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        _replace(client, ORG)
        html = _admin_page(client)
        text = unescape(html.split('name="organisation"', 1)[1].split(">", 1)[1])
        text = text.split("</textarea>")[0]
        shown = yaml.safe_load(text)
        assert Organisation.model_validate(shown) == Organisation.model_validate(ORG)
        r = client.post(
            "/admin/organisation",
            data={"organisation": text, "csrf_token": form_token(html)},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/admin/organisation?saved=true"
        assert "Saved." in client.get(r.headers["location"]).text


def test_admin_page_edit_moves_a_camera(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        _replace(client, ORG)
        html = _admin_page(client)
        at = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
        before = app_of(client).state.services.org.directory().place("dc1", "cam1", at)
        assert (before.team, before.zone) == ("blue", "inbound")
        text = yaml.safe_dump(_moved("green", "picking"))
        r = client.post(
            "/admin/organisation", data={"organisation": text, "csrf_token": form_token(html)}
        )
        assert r.status_code == 303
        placed = app_of(client).state.services.org.directory().place("dc1", "cam1", at)
        assert (placed.team, placed.zone, placed.shift) == ("green", "picking", "early")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("sites:\n  - id: dc1\n    id: dc2\n", "duplicate key &#39;id&#39;"),
        ("sites: [\n", "invalid YAML"),
        ("- just a list\n", "expected a mapping"),
        (
            "sites:\n  - id: dc1\n    timezone: Nowhere/Land\n",
            "sites.0.timezone: unknown time zone",
        ),
        ("sites:\n  - id: dc1\n    camras: []\n", "sites.0.camras: unknown setting"),
    ],
)
def test_admin_page_shows_errors_inline_and_keeps_the_text(
    database_url: str, text: str, shown: str
) -> None:
    with dashboard_client(database_url) as client:
        html = _admin_page(client)
        r = client.post(
            "/admin/organisation", data={"organisation": text, "csrf_token": form_token(html)}
        )
        assert r.status_code == 422
        assert "Not saved" in r.text
        assert shown in r.text
        assert "Not saved" not in client.get("/admin/organisation").text
        with app_of(client).state.services.store.engine.connect() as conn:
            assert load_organisation(conn) == Organisation()


def test_admin_page_post_without_csrf_token_changes_nothing(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        _admin_page(client)
        r = client.post("/admin/organisation", data={"organisation": yaml.safe_dump(ORG)})
        assert r.status_code == 403
        assert client.get("/api/v1/organisation").json() == {"sites": []}
