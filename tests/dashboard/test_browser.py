"""A real browser against the real server: log in through the form and see the team chart.

Debian's headless chromium and chromedriver drive ``liftwatch-dashboard serve`` (uvicorn on
a free port, plain HTTP) over a SQLite file filled with simulated lifts of the last week.
Skipped where chromium is not installed, except under CI (``CI`` set), where `.ci/run`
installs it and a missing browser is a failure.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from dashboard.store import open_store
from edge.events import LiftEvent
from edge.simulate import Mix, event_stream
from tests.support.seed import ORG, seed
from tests.support.web import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DAYS = 7


def _need(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (required in CI: .ci/run installs chromium chromium-driver)")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _simulated_week(now: datetime) -> list[LiftEvent]:
    """About 40 lifts a day on each camera for the last ``DAYS`` days, none in the future."""
    rng = random.Random(5)
    start = now - timedelta(days=DAYS - 1)
    events: list[LiftEvent] = []
    for camera in ("c1", "c2", "c3"):
        stream = event_stream(
            rng, site="s1", camera=camera, start=start, every_s=1800, mix=Mix(rounded=0.25)
        )
        for event in stream:
            if event.bottom >= now - timedelta(minutes=5):
                break
            events.append(event)
    return events


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The dashboard serving a seeded SQLite file; yields its base URL."""
    url = f"sqlite:///{tmp_path / 'liftwatch.db'}"
    seed(url, _simulated_week(datetime.now(timezone.utc)), ORG)
    from dashboard.auth import create_user

    store = open_store(url)
    with store.engine.begin() as conn:
        create_user(conn, "mia", PASSWORD, "viewer")
    store.close()
    config = tmp_path / "dashboard.yaml"
    config.write_text(
        f"database_url: {url}\nmqtt:\n  enabled: false\nweb:\n  cookie_secure: false\n"
    )
    port = _free_port()
    cli = Path(sys.executable).with_name("liftwatch-dashboard")
    proc = subprocess.Popen(
        [str(cli), "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"dashboard did not start:\n{out}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser() -> Iterator[object]:
    _need(CHROMIUM.exists() and CHROMEDRIVER.exists(), "no /usr/bin/chromium + chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need(False, "selenium is not installed (dev extra)")
        raise
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=412,915")  # a phone's viewport
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_log_in_and_see_the_team_chart(server: str, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    driver = browser
    driver.get(server + "/")
    WebDriverWait(driver, 30).until(ec.url_contains("/login"))
    driver.find_element(By.NAME, "username").send_keys("mia")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(driver, 30).until(ec.url_to_be(server + "/"))

    red = driver.find_element(By.CSS_SELECTOR, '.team-card[data-team="red"]')
    assert re.fullmatch(r"\d{1,3}%", red.find_element(By.CSS_SELECTOR, ".ratio").text)
    assert int(red.find_element(By.CSS_SELECTOR, ".lifts").text) > 100
    chart = driver.find_element(By.CSS_SELECTOR, 'figure[data-chart="teams"] svg')
    for team in ("Red team", "Blue team"):
        series = chart.find_element(By.CSS_SELECTOR, f'g.series[data-series="{team}"]')
        points = series.find_elements(By.CSS_SELECTOR, "circle.point")
        assert len(points) >= DAYS - 1, team  # today may still be under the privacy minimum
        assert all(p.is_displayed() for p in points)
    assert chart.size["width"] <= 412  # fits the phone's width
    driver.save_screenshot(str(tmp_path / "overview.png"))

    red.find_element(By.CSS_SELECTOR, "h3 a").click()
    WebDriverWait(driver, 30).until(ec.url_contains("/teams/s1/red"))
    bars = driver.find_elements(By.CSS_SELECTOR, 'figure[data-chart="postures"] rect.bar')
    assert len(bars) >= DAYS
    shots = os.environ.get("LIFTWATCH_SCREENSHOTS")
    if shots:
        driver.save_screenshot(str(Path(shots) / "team.png"))
        shutil.copy(tmp_path / "overview.png", Path(shots) / "overview.png")
