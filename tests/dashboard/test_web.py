"""The HTML pages through the real app: login required, numbers shown, privacy kept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from tests.support.seed import lift, seed
from tests.support.web import add_user, dashboard_client, login

NOON = (datetime.now(timezone.utc) - timedelta(days=2)).replace(
    hour=11, minute=0, second=0, microsecond=0
)
"""Two days ago at 12:00 in Berlin: inside the last 7 site-local days, in the early shift."""


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    red = [lift(NOON + timedelta(minutes=i), "rounded" if i < 3 else "hinge") for i in range(12)]
    blue = [lift(NOON, "rounded", camera="c3"), lift(NOON, "hinge", camera="c3")]
    seed(database_url, red + blue)
    with dashboard_client(database_url) as c:
        add_user(c, "vera", "viewer")
        login(c, "vera")
        yield c


def test_pages_need_a_login(database_url: str) -> None:
    with dashboard_client(database_url) as c:
        for path in ("/", "/teams/s1/red", "/cameras", "/lifts"):
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next=")


def _card(html: str, team: str) -> str:
    match = re.search(
        rf'<article class="card team-card" data-team="{team}">(.*?)</article>', html, re.S
    )
    assert match, f"no card for {team}"
    return match.group(1)


def test_overview_shows_a_card_per_team_and_the_chart(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert '<meta name="viewport"' in html
    red = _card(html, "red")
    assert re.search(r'class="big ratio"[^>]*>25%<', red)  # 3 rounded of 12 scored
    assert re.search(r'class="lifts">12<', red)
    assert re.search(r'class="coverage"[^>]*>100%<', red)
    blue = _card(html, "blue")
    assert "ratios hidden" in blue
    assert "%" not in blue
    chart = html[html.index('data-chart="teams"') :]
    red_series = chart[chart.index('data-series="Red team"') :].split("</g>")[0]
    assert red_series.count('class="point"') == 1
    assert 'data-series="Blue team"' in chart
    assert "Blue team, " not in chart  # its only day is hidden: no point
    assert "https://" not in html.replace("http://www.w3.org/2000/svg", "")  # no CDN
    assert client.get("/", params={"days": 30}).status_code == 200


def test_team_detail(client: TestClient) -> None:
    r = client.get("/teams/s1/red", params={"days": 30})
    assert r.status_code == 200
    assert "Red team" in r.text
    assert 'data-chart="postures"' in r.text
    assert r.text.count('class="bar bar-rounded"') == 1
    assert ">dock<" in r.text and ">early<" in r.text
    assert client.get("/teams/s1/nobody").status_code == 404
    blue = client.get("/teams/s1/blue").text
    assert 'class="bar bar-hidden"' in blue
    assert 'class="bar bar-rounded"' not in blue


def test_camera_health_page(client: TestClient) -> None:
    html = client.get("/cameras").text
    for cam in ("s1/c1", "s1/c2", "s1/c3"):
        assert f'data-camera="{cam}"' in html
    assert "state-unknown" in html


def test_lift_list_filters_and_pages(client: TestClient, database_url: str) -> None:
    html = client.get("/lifts", params={"team": "red", "posture": "rounded"}).text
    assert html.count('class="posture-rounded"') == 3
    assert 'class="posture-hinge"' not in html
    assert 'rel="next"' not in html
    many = [lift(NOON - timedelta(hours=1, seconds=i), camera="c2") for i in range(60)]
    seed(database_url, many)
    first = client.get("/lifts", params={"camera": "c2"}).text
    assert first.count("<tr>") == 1 + 50
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert second.count("<tr>") == 1 + 10
    assert "Newest" in second
    assert client.get("/lifts", params={"cursor": "junk"}).status_code == 400
    # the filter form as a browser sends it: empty fields mean "all"
    form = {k: "" for k in ("site", "team", "zone", "camera", "shift", "posture", "view", "to")}
    everything = client.get("/lifts", params={**form, "from": NOON.date().isoformat()})
    assert everything.status_code == 200
    assert everything.text.count("<tr>") == 1 + 50
    assert client.get("/lifts", params={"posture": "slouch"}).status_code == 422
    assert client.get("/lifts", params={"from": "yesterday"}).status_code == 422


def test_an_empty_dashboard_says_so(database_url: str) -> None:
    with dashboard_client(database_url) as c:
        add_user(c, "vera", "viewer")
        login(c, "vera")
        assert "No teams and no lifts yet" in c.get("/").text
        assert "No camera has reported yet" in c.get("/cameras").text
        assert "No lifts match" in c.get("/lifts").text


def test_stylesheet_is_served_and_nothing_else(client: TestClient) -> None:
    css = client.get("/static/style.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert client.get("/static/..%2Fweb.py").status_code == 404
    assert client.get("/static/missing.css").status_code == 404
