"""Alerts reach a real webhook, SMTP server and MQTT broker, survive outages, arrive once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from dashboard.alerts.channels import (
    ChannelError,
    EmailChannel,
    MQTTChannel,
    WebhookChannel,
    alert_message,
)
from dashboard.alerts.delivery import Dispatcher, RetryPolicy, claim
from dashboard.alerts.engine import AlertEngine
from dashboard.alerts.rules import Rule
from dashboard.alerts.store import AlertFilter, get_alert, list_alerts, replace_rules
from dashboard.config import EmailConfig, MQTTConfig, WebhookConfig
from dashboard.org import Directory
from dashboard.store import Store, open_store, schema
from dashboard.store.lifts import add_lifts
from dashboard.store.organisation import replace_organisation
from tests.dashboard.alerts.test_engine import ORG, Lifts
from tests.support.alerting import SmtpServer, WebhookServer
from tests.support.mqtt import Broker, Subscriber, TLSFiles, make_tls

RULE = Rule(id="rate", kind="rate", scope="camera", count=3, window_min=10, cooldown_min=10)
FAST = RetryPolicy(first_s=0.05, max_s=0.4)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(tls: TLSFiles) -> Iterator[SmtpServer]:
    with SmtpServer(tls, "alerts@example.com", "s3cret-password") as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


def email_config(smtp: SmtpServer, tls: TLSFiles, password: str = "s3cret-password") -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "starttls",
            "ca_file": tls.ca_file,
            "username": "alerts@example.com",
            "password": SecretStr(password),
            "from": "liftwatch@example.com",
            "to": ["supervisor@example.com", "ehs@example.com"],
            "timeout_s": 5,
        }
    )


def mqtt_config(broker: Broker) -> MQTTConfig:
    return MQTTConfig(host="127.0.0.1", port=broker.port, client_id="dash-test")


def raise_alert(store: Store, channels: list[str]) -> int:
    """Store three rounded lifts at c1 now and let the engine raise the alert."""
    with store.engine.begin() as conn:
        replace_organisation(conn, ORG)
        replace_rules(conn, [RULE], None)
    lifts = Lifts(store)
    lifts.directory = Directory(ORG)
    now = datetime.now(timezone.utc)
    events = [lifts.make(now - timedelta(seconds=i), track=f"t{i}") for i in range(3)]
    items = [(e, lifts.directory.place(e.site, e.camera, e.bottom)) for e in events]
    with store.engine.begin() as conn:
        stored = add_lifts(conn, items, now).stored
    (fired,) = AlertEngine(store.engine, channels).on_stored(stored)
    return fired.alert_id


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(database_url)
    yield s
    s.close()


def deliveries(store: Store, alert_id: int) -> dict[str, tuple[str, int, str | None]]:
    with store.engine.connect() as conn:
        alert = get_alert(conn, alert_id)
    assert alert is not None
    return {d.channel: (d.status, d.attempts, d.last_error) for d in alert.deliveries}


def wait_until(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def test_one_alert_arrives_on_webhook_email_and_mqtt(
    store: Store, webhook: WebhookServer, smtp: SmtpServer, tls: TLSFiles, broker: Broker
) -> None:
    with Subscriber(broker, "liftwatch/v1/+/alerts") as sub:
        alert_id = raise_alert(store, ["webhook", "email", "mqtt"])
        channels = [
            WebhookChannel(WebhookConfig(url=webhook.url)),
            EmailChannel(email_config(smtp, tls)),
            MQTTChannel(mqtt_config(broker)),
        ]
        dispatcher = Dispatcher(store.engine, channels, FAST)
        dispatcher.start()
        try:
            (hook,) = webhook.wait_for(1)
            (mail,) = smtp.wait_for(1)
            (msg,) = sub.wait_for(1, topic="liftwatch/v1/s1/alerts")
            wait_until(
                lambda: all(s == "delivered" for s, _, _ in deliveries(store, alert_id).values())
            )
        finally:
            dispatcher.stop()
    with store.engine.connect() as conn:
        alert = get_alert(conn, alert_id)
    assert alert is not None
    assert hook["text"] == alert.text and "camera c1 (zone dock)" in hook["text"]
    assert hook["alert"]["id"] == alert_id and hook["alert"]["count"] == 3
    assert mail["Subject"] == "[liftwatch] s1: risky lifting at c1"
    assert mail["To"] == "supervisor@example.com, ehs@example.com"
    assert alert.text in mail.get_payload(decode=True).decode()
    assert msg.qos == 1 and not msg.retain
    payload = json.loads(msg.payload)
    assert payload == alert_message(alert)
    assert (
        payload["schema_version"] == 1 and payload["camera"] == "c1" and "track_id" not in payload
    )
    assert deliveries(store, alert_id) == {
        "email": ("delivered", 1, None),
        "mqtt": ("delivered", 1, None),
        "webhook": ("delivered", 1, None),
    }


def test_channels_down_then_up_deliver_exactly_once(
    store: Store, webhook: WebhookServer, smtp: SmtpServer, tls: TLSFiles, broker: Broker
) -> None:
    webhook.stop()
    smtp.stop()
    broker.stop()
    alert_id = raise_alert(store, ["webhook", "email", "mqtt"])
    channels = [
        WebhookChannel(WebhookConfig(url=webhook.url, timeout_s=2)),
        EmailChannel(email_config(smtp, tls)),
        MQTTChannel(mqtt_config(broker), timeout_s=2),
    ]
    dispatcher = Dispatcher(store.engine, channels, FAST, poll_s=0.2)
    dispatcher.start()
    try:
        wait_until(lambda: all(a >= 3 for _, a, _ in deliveries(store, alert_id).values()))
        down = deliveries(store, alert_id)
        assert {s for s, _, _ in down.values()} == {"pending"}
        assert "unreachable" in (down["webhook"][2] or "")
        assert "SMTP 127.0.0.1" in (down["email"][2] or "")
        assert "MQTT broker" in (down["mqtt"][2] or "")
        broker.start()
        with Subscriber(broker, "liftwatch/v1/+/alerts") as sub:
            webhook.start()
            smtp.start()
            webhook.wait_for(1)
            smtp.wait_for(1)
            sub.wait_for(1)
            wait_until(
                lambda: all(s == "delivered" for s, _, _ in deliveries(store, alert_id).values())
            )
            time.sleep(1.0)  # longer than the capped back-off: a duplicate would show now
            assert len(sub.messages) == 1
    finally:
        dispatcher.stop()
    assert len(webhook.items) == 1 and len(smtp.items) == 1
    assert all(err is None for _, _, err in deliveries(store, alert_id).values())


def test_refused_webhook_and_wrong_smtp_password_are_retried_with_the_error_recorded(
    store: Store, webhook: WebhookServer, smtp: SmtpServer, tls: TLSFiles
) -> None:
    webhook.status = 503
    alert_id = raise_alert(store, ["webhook", "email"])
    channels = [
        WebhookChannel(WebhookConfig(url=webhook.url)),
        EmailChannel(email_config(smtp, tls, password="wrong-password")),
    ]
    dispatcher = Dispatcher(store.engine, channels, FAST, poll_s=0.2)
    dispatcher.start()
    try:
        wait_until(lambda: all(a >= 2 for _, a, _ in deliveries(store, alert_id).values()))
    finally:
        dispatcher.stop()
    state = deliveries(store, alert_id)
    assert state["webhook"][0] == "pending" and "HTTP 503" in (state["webhook"][2] or "")
    assert state["email"][0] == "pending" and "SMTP 127.0.0.1" in (state["email"][2] or "")
    assert smtp.auth_failures >= 2 and smtp.items == []


def test_email_needs_starttls_before_auth(smtp: SmtpServer, tls: TLSFiles) -> None:
    cfg = email_config(smtp, tls).model_copy(update={"security": "none"})
    alert = _fake_alert()
    with pytest.raises(ChannelError, match="SMTP"):
        EmailChannel(cfg).send(alert)
    assert smtp.items == []


def _fake_alert():  # type: ignore[no-untyped-def]
    from dashboard.alerts.store import Alert

    now = datetime.now(timezone.utc)
    return Alert(
        id=1, rule_id="r", kind="rate", site="s1", scope_kind="camera", camera="c1",
        zone="dock", team=None, shift=None, day=None, since=now, fired_at=now, last_at=now,
        count=3, value=None, text="Risky lifting", status="open", acknowledged_by=None,
        acknowledged_at=None, resolved_by=None, resolved_at=None,
    )  # fmt: skip


def test_back_off_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(first_s=1, max_s=60)
    assert [policy.delay_s(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_delivery_too_old_is_given_up_and_kept_on_record(store: Store) -> None:
    alert_id = raise_alert(store, ["webhook"])
    channel = WebhookChannel(WebhookConfig(url="http://127.0.0.1:9/none", timeout_s=1))
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    dispatcher = Dispatcher(
        store.engine, [channel], RetryPolicy(give_up=timedelta(hours=1)), clock=lambda: later
    )
    assert dispatcher.run_once(channel) == 1
    status, attempts, error = deliveries(store, alert_id)["webhook"]
    assert (status, attempts) == ("failed", 1) and "unreachable" in (error or "")
    assert dispatcher.run_once(channel) == 0


def test_dispatchers_in_two_processes_claim_each_row_once(database_url: str) -> None:
    first, second = open_store(database_url), open_store(database_url)
    try:
        for i in range(5):
            with first.engine.begin() as conn:
                conn.execute(
                    schema.alerts.insert().values(
                        id=i + 1,
                        rule_id="r",
                        kind="rate",
                        site="s1",
                        scope_kind="camera",
                        scope_key="camera:c1",
                        since=_now(),
                        fired_at=_now(),
                        last_at=_now(),
                        count=1,
                        text="x",
                        status="open",
                    )
                )
                conn.execute(
                    schema.alert_deliveries.insert().values(
                        alert_id=i + 1,
                        channel="webhook",
                        status="pending",
                        attempts=0,
                        next_at=_now(),
                        created_at=_now(),
                    )
                )
        if database_url.startswith("postgresql"):
            with first.engine.begin() as a, second.engine.begin() as b:
                got_a = claim(a, "webhook", _now(), limit=3)
                got_b = claim(b, "webhook", _now(), limit=3)  # a's rows are locked: skipped
        else:  # SQLite serialises writers: the second claim comes after the first committed
            with first.engine.begin() as a:
                got_a = claim(a, "webhook", _now(), limit=3)
            with second.engine.begin() as b:
                got_b = claim(b, "webhook", _now(), limit=3)
        ids_a, ids_b = {c.id for c in got_a}, {c.id for c in got_b}
        assert len(ids_a) == 3 and len(ids_b) == 2 and not ids_a & ids_b
        with first.engine.begin() as conn:
            assert claim(conn, "webhook", _now()) == []  # all leased
    finally:
        first.close()
        second.close()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def test_alert_list_filters_by_status(store: Store) -> None:
    alert_id = raise_alert(store, [])
    with store.engine.connect() as conn:
        assert [a.id for a in list_alerts(conn, AlertFilter(status="open"))[0]] == [alert_id]
        assert list_alerts(conn, AlertFilter(status="resolved")) == ([], 0)
