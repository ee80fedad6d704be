"""The alerts API and pages: who may read, acknowledge, resolve and edit rules; history."""

from __future__ import annotations

from html import unescape

import pytest
from fastapi.testclient import TestClient

from dashboard.alerts.engine import AlertEngine
from dashboard.alerts.rules import DEFAULT_RULES
from dashboard.store.organisation import replace_organisation
from tests.dashboard.alerts.test_engine import NOW, ORG, Clock, Lifts
from tests.support.web import add_token, add_user, app_of, dashboard_client, form_token, login


def bearer(client: TestClient, role: str, name: str | None = None) -> dict[str, str]:
    add_user(client, name or role, role)
    return {"Authorization": f"Bearer {add_token(client, name or role)}"}


def raise_alerts(client: TestClient, cameras: list[str]) -> None:
    """Three rounded lifts of one track on each camera: the default same-track rule fires."""
    store = app_of(client).state.services.store
    with store.engine.begin() as conn:
        replace_organisation(conn, ORG)
    lifts, engine = Lifts(store), AlertEngine(store.engine, ["webhook"], clock=Clock(NOW))
    for camera in cameras:
        engine.on_stored(lifts.store_all([lifts.make(NOW, camera=camera) for _ in range(3)]))


def test_default_rules_are_seeded_once_and_readable_by_a_viewer(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        viewer = bearer(client, "viewer")
        rules = client.get("/api/v1/alert-rules", headers=viewer).json()
        assert [r["id"] for r in rules] == sorted(r.id for r in DEFAULT_RULES)
        admin = bearer(client, "admin")
        client.delete("/api/v1/alert-rules/zone-rate", headers=admin)
    with dashboard_client(database_url) as client:  # a restart does not bring it back
        headers = bearer(client, "viewer", "v2")
        ids = [r["id"] for r in client.get("/api/v1/alert-rules", headers=headers).json()]
        assert "zone-rate" not in ids and "same-track" in ids


@pytest.mark.parametrize(("role", "act", "edit"), [
    ("viewer", 403, 403), ("manager", 200, 403), ("admin", 200, 200),
])  # fmt: skip
def test_roles(database_url: str, role: str, act: int, edit: int) -> None:
    with dashboard_client(database_url) as client:
        raise_alerts(client, ["c1"])
        headers = bearer(client, role)
        listed = client.get("/api/v1/alerts", headers=headers)
        assert listed.status_code == 200
        (alert,) = listed.json()["alerts"]
        url = f"/api/v1/alerts/{alert['id']}"
        assert client.post(f"{url}/acknowledge", headers=headers).status_code == act
        assert client.post(f"{url}/resolve", headers=headers).status_code == act
        rule = {"id": "x", "kind": "rate", "scope": "zone", "count": 4, "window_min": 5}
        assert client.put("/api/v1/alert-rules/x", json=rule, headers=headers).status_code == edit
    with dashboard_client(database_url) as client:
        assert client.get("/api/v1/alerts").status_code == 401


def test_acknowledge_records_who_and_resolve_keeps_the_history(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        raise_alerts(client, ["c1", "c3"])
        alice = bearer(client, "manager", "alice")
        bob = bearer(client, "manager", "bob")
        page = client.get("/api/v1/alerts?status=open", headers=bob).json()
        assert page["total"] == 2
        newest, oldest = page["alerts"]
        assert (newest["camera"], oldest["camera"]) == ("c3", "c1")
        assert newest["deliveries"][0]["channel"] == "webhook"
        ack = client.post(f"/api/v1/alerts/{oldest['id']}/acknowledge", headers=bob).json()
        assert (ack["status"], ack["acknowledged_by"]) == ("acknowledged", "bob")
        again = client.post(f"/api/v1/alerts/{oldest['id']}/acknowledge", headers=alice).json()
        assert again["acknowledged_by"] == "bob"  # the first acknowledgement stays on record
        done = client.post(f"/api/v1/alerts/{oldest['id']}/resolve", headers=alice).json()
        assert (done["status"], done["resolved_by"], done["acknowledged_by"]) == (
            "resolved", "alice", "bob",
        )  # fmt: skip
        direct = client.post(f"/api/v1/alerts/{newest['id']}/resolve", headers=bob).json()
        assert (direct["acknowledged_by"], direct["resolved_by"]) == ("bob", "bob")

        def ids(query: str) -> list[int]:
            body = client.get(f"/api/v1/alerts?{query}", headers=bob).json()
            return [a["id"] for a in body["alerts"]]

        assert ids("status=open") == []
        assert ids("status=resolved") == [newest["id"], oldest["id"]]
        assert ids("rule=same-track&limit=1") == [newest["id"]]
        assert ids("site=other") == []
        assert ids("since=2026-03-02T08:59:00Z") == [newest["id"], oldest["id"]]
        assert ids("until=2026-03-02T08:59:00Z") == []
        assert client.get("/api/v1/alerts?since=2026-03-02T08:59", headers=bob).status_code == 422
        assert client.post("/api/v1/alerts/999/resolve", headers=bob).status_code == 404


def test_rules_are_validated_and_replaced_by_an_admin(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        admin = bearer(client, "admin")
        bad = {"id": "r", "kind": "rate", "count": 3, "window_min": 5}  # no scope
        assert client.put("/api/v1/alert-rules/r", json=bad, headers=admin).status_code == 422
        rules = [
            {"id": "one", "kind": "same_track", "count": 4, "window_min": 15, "cooldown_min": 5},
            {"id": "two", "kind": "team_ratio", "ratio_pct": 25, "min_scored": 30},
        ]
        put = client.put("/api/v1/alert-rules", json=rules, headers=admin)
        assert put.status_code == 200
        assert [(r["id"], r["scope"]) for r in put.json()] == [("one", "camera"), ("two", "team")]
        twice = client.put("/api/v1/alert-rules", json=[rules[0], rules[0]], headers=admin)
        assert twice.status_code == 422
        assert client.delete("/api/v1/alert-rules/nope", headers=admin).status_code == 404


def test_alerts_page_acknowledges_with_the_csrf_token(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        raise_alerts(client, ["c1"])
        add_user(client, "sue", "manager")
        login(client, "sue")
        page = client.get("/alerts")
        assert page.status_code == 200
        html = unescape(page.text)
        assert "camera c1 (zone dock)" in html and "Acknowledge" in html
        alert_id = int(html.split('id="alert-')[1].split('"')[0])
        refused = client.post(f"/alerts/{alert_id}/acknowledge", data={"back": "open"})
        assert refused.status_code == 403
        token = form_token(page.text)
        done = client.post(
            f"/alerts/{alert_id}/acknowledge", data={"back": "open", "csrf_token": token}
        )
        assert done.status_code == 303 and done.headers["location"] == "/alerts?status=open"
        acked = unescape(client.get("/alerts?status=acknowledged").text)
        assert "ack. sue" in acked
        assert "No open alerts" in client.get("/alerts").text


def test_viewer_sees_alerts_and_rules_without_buttons(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        raise_alerts(client, ["c1"])
        add_user(client, "val", "viewer")
        login(client, "val")
        assert "/acknowledge" not in client.get("/alerts").text
        rules = client.get("/alert-rules").text
        assert "same-track" in rules and "Save" not in rules
    with dashboard_client(database_url) as client:
        assert client.get("/alerts").status_code == 303


def test_admin_edits_a_rule_on_the_page(database_url: str) -> None:
    with dashboard_client(database_url) as client:
        add_user(client, "ada", "admin")
        login(client, "ada")
        token = form_token(client.get("/alert-rules").text)
        form = {"csrf_token": token, "id": "same-track", "kind": "same_track", "count": "4",
                "window_min": "12", "cooldown_min": "20", "enabled": "1"}  # fmt: skip
        assert client.post("/alert-rules", data=form).status_code == 303
        headers = {"X-CSRF-Token": token}
        rules = {r["id"]: r for r in client.get("/api/v1/alert-rules", headers=headers).json()}
        assert (rules["same-track"]["count"], rules["same-track"]["cooldown_min"]) == (4, 20)
        bad = client.post("/alert-rules", data={**form, "count": "0"})
        assert bad.status_code == 422 and "count" in bad.text
        off = client.post("/alert-rules", data={k: v for k, v in form.items() if k != "enabled"})
        assert off.status_code == 303
        gone = client.post("/alert-rules/zone-rate/delete", data={"csrf_token": token})
        assert gone.status_code == 303
        rules = {r["id"]: r for r in client.get("/api/v1/alert-rules").json()}
        assert rules["same-track"]["enabled"] is False and "zone-rate" not in rules


def test_an_alert_id_beyond_the_database_column_is_refused_not_a_server_error(
    database_url: str,
) -> None:
    """Found by schemathesis: 2**31 and larger reached the query and failed there (500)."""
    with dashboard_client(database_url) as client:
        headers = bearer(client, "manager")
        for alert_id in (2**31, 2**63, 10**30, 0):
            for method, url in (
                ("GET", f"/api/v1/alerts/{alert_id}"),
                ("POST", f"/api/v1/alerts/{alert_id}/acknowledge"),
                ("POST", f"/api/v1/alerts/{alert_id}/resolve"),
                ("POST", f"/alerts/{alert_id}/resolve"),
            ):
                response = client.request(method, url, headers=headers)
                assert response.status_code == 422, (url, response.status_code)
        assert client.get(f"/api/v1/alerts/{2**31 - 1}", headers=headers).status_code == 404


def test_a_page_or_offset_beyond_any_alert_is_refused_not_a_server_error(
    database_url: str,
) -> None:
    """Found by schemathesis: an offset of 2**63 failed in PostgreSQL ("bigint out of range")."""
    with dashboard_client(database_url) as client:
        headers = bearer(client, "viewer")
        for url in ("/api/v1/alerts?offset=9223372036854775808", f"/alerts?page={10**20}"):
            assert client.get(url, headers=headers).status_code == 422, url
        assert client.get("/api/v1/alerts?offset=2147483647", headers=headers).status_code == 200
        assert client.get("/alerts?page=1000", headers=headers).status_code == 200
