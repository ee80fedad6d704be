"""The JSON API through the real app and database, authenticated as a client would be."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from tests.support.seed import lift, seed, week
from tests.support.web import add_token, add_user, dashboard_client, login

MONDAY = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-03T00:00:00Z"}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """A viewer's bearer token on every request, over the seeded week."""
    seed(database_url, week())
    with dashboard_client(database_url) as c:
        add_user(c, "vera", "viewer")
        c.headers["Authorization"] = f"Bearer {add_token(c, 'vera')}"
        yield c


def test_reads_need_a_login(database_url: str) -> None:
    with dashboard_client(database_url) as c:
        for path in ("/api/v1/metrics", "/api/v1/metrics.csv", "/api/v1/lifts", "/api/v1/cameras"):
            r = c.get(path)
            assert r.status_code == 401, path
        add_user(c, "vera", "viewer")
        login(c, "vera")
        assert c.get("/api/v1/metrics").status_code == 200


def test_team_metrics(client: TestClient) -> None:
    r = client.get("/api/v1/metrics", params={"group_by": "team", **MONDAY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["from"] == "2026-03-02T00:00:00Z"
    assert body["previous_from"] == "2026-03-01T00:00:00Z"
    assert body["min_group_lifts"] == 5
    blue, red = body["groups"]
    assert {k: red[k] for k in ("site", "team", "lifts", "hinge", "rounded", "unscorable")} == {
        "site": "s1",
        "team": "red",
        "lifts": 6,
        "hinge": 3,
        "rounded": 2,
        "unscorable": 1,
    }
    assert red["risky_ratio"] == 0.4
    assert red["coverage"] == 0.8333
    assert red["lifts_per_active_hour"] == 1.5
    assert red["median_trunk_flexion_deg"] == 55.0
    assert red["previous_risky_ratio"] == 0.2
    assert red["risky_ratio_delta"] == 0.2
    assert red["zone"] is None
    assert blue["team"] == "blue"
    assert blue["hidden"] is True
    assert blue["lifts"] == 3
    assert blue["rounded"] is None
    assert blue["risky_ratio"] is None


def test_period_is_widened_to_whole_hours_and_naive_times_are_utc(client: TestClient) -> None:
    r = client.get(
        "/api/v1/metrics", params={"from": "2026-03-02T08:30:00", "to": "2026-03-02T10:15+01:00"}
    )
    body = r.json()
    assert (body["from"], body["to"]) == ("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z")
    red = next(g for g in body["groups"] if g["team"] == "red")
    assert red["lifts"] == 3  # 08:10, 08:40, 09:05 UTC


def test_bad_periods_and_groupings_are_refused(client: TestClient) -> None:
    assert (
        client.get(
            "/api/v1/metrics", params={"from": MONDAY["to"], "to": MONDAY["from"]}
        ).status_code
        == 422
    )
    assert client.get("/api/v1/metrics", params={"group_by": "track"}).status_code == 422
    long = {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    assert client.get("/api/v1/metrics", params=long).status_code == 422


def test_shift_and_day_groupings_use_the_site_time_zone(client: TestClient) -> None:
    shifts = client.get("/api/v1/metrics", params={"group_by": "shift", **MONDAY}).json()
    assert {g["shift"]: g["lifts"] for g in shifts["groups"]} == {"early": 8, "late": 1}
    # 00:00-06:00 UTC on Tuesday is Monday's night shift in Berlin
    night = {"from": "2026-03-03T00:00:00Z", "to": "2026-03-03T06:00:00Z", "group_by": "day"}
    (day,) = client.get("/api/v1/metrics", params=night).json()["groups"]
    assert (day["day"], day["lifts"]) == ("2026-03-02", 1)
    daily = client.get(
        "/api/v1/metrics/daily", params={"days": 3, "last": "2026-03-03", "site": "s1"}
    ).json()
    red = next(s for s in daily["series"] if s["team"] == "red")
    assert [(p["day"], p["lifts"], p["risky_ratio"]) for p in red["points"]] == [
        ("2026-03-01", 5, 0.2),
        ("2026-03-02", 7, 0.5),
        ("2026-03-03", 0, None),
    ]
    blue = next(s for s in daily["series"] if s["team"] == "blue")
    assert blue["points"][1] | {"day": None} == {
        "day": None,
        "lifts": 3,
        "hidden": True,
        "risky_ratio": None,
        "coverage": None,
        "rounded": None,
        "scored": None,
    }


def test_metrics_as_csv(client: TestClient) -> None:
    r = client.get("/api/v1/metrics.csv", params={"group_by": "zone", **MONDAY})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0])[:3] == ["site", "zone", "lifts"]
    by_zone = {row["zone"]: row for row in rows}
    assert by_zone["dock"]["lifts"] == "7"
    assert by_zone["dock"]["hidden"] == "false"
    assert float(by_zone["dock"]["risky_ratio"]) == pytest.approx(2 / 6, abs=1e-4)
    assert by_zone["aisle"]["hidden"] == "true"
    assert by_zone["aisle"]["risky_ratio"] == ""
    assert by_zone["aisle"]["rounded"] == ""


def test_lift_list_filters_and_pages(client: TestClient) -> None:
    r = client.get("/api/v1/lifts", params={"team": "red", "limit": 4, **MONDAY})
    page = r.json()
    assert [x["bottom"] for x in page["lifts"]] == [
        "2026-03-02T13:00:00Z",
        "2026-03-02T10:59:00Z",
        "2026-03-02T10:00:00Z",
        "2026-03-02T09:05:00Z",
    ]
    assert "track_id" not in page["lifts"][0]
    rest = client.get(
        "/api/v1/lifts",
        params={"team": "red", "limit": 4, "cursor": page["next_cursor"], **MONDAY},
    ).json()
    assert [x["bottom"] for x in rest["lifts"]] == ["2026-03-02T08:40:00Z", "2026-03-02T08:10:00Z"]
    assert rest["next_cursor"] is None
    rounded = client.get("/api/v1/lifts", params={"posture": "rounded", "zone": "dock"}).json()
    assert {(x["camera"], x["posture"]) for x in rounded["lifts"]} == {
        ("c1", "rounded"),
        ("c3", "rounded"),
    }
    assert len(rounded["lifts"]) == 4  # Sunday 12:00, Monday 10:00, Tuesday 00:00 and c3
    assert client.get("/api/v1/lifts", params={"cursor": "garbage"}).status_code == 400
    assert client.get("/api/v1/lifts", params={"posture": "slouch"}).status_code == 422
    assert client.get("/api/v1/lifts", params={"track_id": "x"}).json()["lifts"]  # ignored


def test_cameras_with_status(client: TestClient) -> None:
    cams = client.get("/api/v1/cameras").json()
    assert [(c["site"], c["id"], c["team"], c["state"]) for c in cams] == [
        ("s1", "c1", "red", "unknown"),
        ("s1", "c2", "red", "unknown"),
        ("s1", "c3", "blue", "unknown"),
    ]
    assert all(c["possibly_lost"] >= 0 for c in cams)


def test_recent_lifts_count_with_default_period(database_url: str) -> None:
    now = datetime.now(timezone.utc)
    seed(database_url, [lift(now - timedelta(hours=h), camera="c2") for h in range(6)])
    with dashboard_client(database_url) as c:
        add_user(c, "vera", "viewer")
        c.headers["Authorization"] = f"Bearer {add_token(c, 'vera')}"
        (red,) = c.get("/api/v1/metrics").json()["groups"]
        assert (red["team"], red["lifts"], red["hidden"]) == ("red", 6, False)
        cams = {x["id"]: x for x in c.get("/api/v1/cameras", params={"site": "s1"}).json()}
        assert cams["c2"]["lifts_24h"] == 6


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, tag in (
        ("/api/v1/metrics", "metrics"),
        ("/api/v1/metrics.csv", "metrics"),
        ("/api/v1/metrics/daily", "metrics"),
        ("/api/v1/lifts", "lifts"),
        ("/api/v1/cameras", "cameras"),
    ):
        assert spec["paths"][path]["get"]["tags"] == [tag]
    group = spec["components"]["schemas"]["GroupOut"]["properties"]
    assert "privacy.min_group_lifts" in group["hidden"]["description"]
