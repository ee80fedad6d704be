"""No secret reaches the dashboard's log: the real ``liftwatch-dashboard serve`` process,
configured with every secret it takes (DATABASE_URL password, MQTT, SMTP, webhook URL),
through config load, a refused then accepted MQTT connect, failed and good logins, bearer
token use and an alert mailed with a password the mail server refuses.

Also the commands that fail early (a bad or unreachable DATABASE_URL) say why without it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy.engine import make_url

from dashboard.auth import create_token, create_user
from dashboard.store import open_store
from edge.events import lift_topic
from edge.simulate import simulated_event
from tests.support.alerting import SmtpServer, WebhookServer
from tests.support.events import wait_until
from tests.support.mqtt import HOST, Broker, free_port, make_tls, mosquitto_binary

MQTT_SECRET = "mqtt-Secret-7f3a9"
SMTP_SECRET = "smtp-Secret-51c2e"
HOOK_SECRET = "hook-Secret-0d9b4"
DB_SECRET = "db-Secret-8e61f"
USER_PASSWORD = "user password 2b7d"
WRONG_PASSWORD = "wrong password 99x"


def with_password(url: str) -> tuple[str, str]:
    """``url`` carrying a password (ours when it had none: the test server trusts local
    connections) and the password it carries."""
    parsed = make_url(url)
    if parsed.password is None:
        parsed = parsed.set(password=DB_SECRET)
    return parsed.render_as_string(hide_password=False), str(parsed.password)


@contextmanager
def serving(config: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dashboard.cli", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_logged(log: Path, text: str, timeout_s: float = 30) -> None:
    wait_until(lambda: text in log.read_text(errors="replace"), timeout_s, f"{text!r} logged")


def test_no_secret_reaches_the_log(tmp_path: Path, postgres_url: str) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    database_url, db_password = with_password(postgres_url)
    tls = make_tls(tmp_path / "tls")
    store = open_store(database_url)
    with store.engine.begin() as conn:
        create_user(conn, "ann", USER_PASSWORD, "admin")
        token = create_token(conn, "ann", "secrets test")[1]
    store.close()
    port = free_port()
    config = tmp_path / "dashboard.yaml"
    log = tmp_path / "dashboard.log"
    with (
        Broker(tmp_path / "broker", users={"someone-else": "x"}) as broker,
        SmtpServer(tls, "alerts", "not-what-the-dashboard-has") as smtp,
        WebhookServer() as webhook,
    ):
        email = {"host": HOST, "port": smtp.port, "security": "starttls",
                 "ca_file": str(tls.ca_file), "username": "alerts", "from": "lw@example.com",
                 "to": ["ehs@example.com"], "timeout_s": 5}  # fmt: skip
        settings = {
            "database_url": "sqlite:///overridden-by-env.db",
            "mqtt": {"host": HOST, "port": broker.port, "client_id": "secrets-test",
                     "keepalive_s": 5, "username": "liftwatch-dashboard"},
            "web": {"host": HOST, "port": port, "cookie_secure": False},
            "alerts": {"webhook": {"url": "http://placeholder.invalid/"}, "email": email,
                       "retry": {"first_s": 0.2, "max_s": 0.5}},
        }  # fmt: skip
        config.write_text(json.dumps(settings))
        env = {
            "DATABASE_URL": database_url,
            "LIFTWATCH_MQTT_PASSWORD": MQTT_SECRET,
            "LIFTWATCH_SMTP_PASSWORD": SMTP_SECRET,
            "LIFTWATCH_ALERT_WEBHOOK_URL": f"{webhook.url}{HOOK_SECRET}",
        }
        with serving(config, env, log):
            wait_logged(log, "refused the connection")
            broker.set_users({"liftwatch-dashboard": MQTT_SECRET, "agent": "agent-pw"})
            wait_logged(log, "MQTT ingest connected")
            web = httpx.Client(base_url=f"http://{HOST}:{port}", follow_redirects=False)
            wait_until(lambda: _answers(web), 30, "the web server")
            for password in (WRONG_PASSWORD, USER_PASSWORD):
                page = web.get("/login")
                csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                web.post("/login", data={"username": "ann", "password": password,
                                         "csrf_token": csrf})  # fmt: skip
            assert web.get("/api/v1/organisation").status_code == 200
            session = web.cookies.get("liftwatch_session")
            assert session
            bearer = httpx.Client(base_url=f"http://{HOST}:{port}")
            assert bearer.get(
                "/api/v1/lifts", headers={"Authorization": f"Bearer {token}"}
            ).is_success
            guessed = bearer.get("/api/v1/lifts", headers={"Authorization": "Bearer lwt_guess"})
            assert guessed.status_code == 401
            _raise_an_alert(broker)
            webhook.wait_for(1, timeout_s=30)
            wait_until(lambda: smtp.auth_failures > 0, 30, "the mail server refused the login")
            time.sleep(0.5)
    logged = log.read_text(errors="replace")
    assert "logged in" in logged and "failed login" in logged
    secrets = [MQTT_SECRET, SMTP_SECRET, HOOK_SECRET, db_password, USER_PASSWORD,
               WRONG_PASSWORD, token, session, "lwt_guess"]  # fmt: skip
    leaked = [s for s in secrets if s in logged]
    assert not leaked, f"secrets in the log: {leaked}\n{logged[-3000:]}"


def _answers(web: httpx.Client) -> bool:
    try:
        return web.get("/healthz").status_code in (200, 503)
    except httpx.TransportError:
        return False


def _raise_an_alert(broker: Broker) -> None:
    """Three rounded lifts of one track: the default same-track rule fires."""
    rng = random.Random(5)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("agent", "agent-pw")
    client.connect(HOST, broker.port)
    client.loop_start()
    try:
        for seq in range(3):
            event = simulated_event(
                rng, site="dc1", camera="cam1", seq=seq, posture="rounded",
                bottom=datetime.now(timezone.utc), track_id="k1",
            )  # fmt: skip
            client.publish(lift_topic("dc1", "cam1"), event.to_payload(), qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.mark.parametrize(
    "database_url",
    [
        "mysql://liftwatch:{secret}@db.example/liftwatch",  # refused by the config check
        "postgresql+psycopg://liftwatch:{secret}@127.0.0.1:{port}/liftwatch",  # unreachable
    ],
)
def test_a_failing_database_url_is_reported_without_its_password(
    tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "dashboard.yaml"
    config.write_text("mqtt: {enabled: false}\n")
    url = database_url.format(secret=DB_SECRET, port=free_port())
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "migrate", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": url},
        timeout=60,
    )
    assert done.returncode != 0
    assert "liftwatch" in done.stderr + done.stdout
    assert DB_SECRET not in done.stderr + done.stdout
