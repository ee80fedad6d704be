"""End to end in one process: lifts over MQTT → ingest → alert engine → webhook and MQTT."""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timezone

import paho.mqtt.client as mqtt

from dashboard.app import start_services, stop_services
from dashboard.config import DashboardConfig, complete
from edge.events import lift_topic
from edge.simulate import simulated_event
from tests.support.alerting import WebhookServer
from tests.support.mqtt import Broker, Subscriber


def _config(broker: Broker, database_url: str, webhook_url: str, client_id: str) -> DashboardConfig:
    """The dashboard with ingest on ``broker`` and alerts sent to ``webhook_url``."""
    return complete(
        {
            "database_url": database_url,
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": client_id},
            "alerts": {"webhook": {"url": webhook_url}},
        },
        None,
        env={},
    )


def test_rounded_lifts_from_the_broker_raise_one_alert_on_each_channel(
    broker: Broker, sqlite_url: str
) -> None:
    with WebhookServer() as webhook, Subscriber(broker, "liftwatch/v1/+/alerts") as sub:
        config = _config(broker, sqlite_url, webhook.url, "dash-e2e")
        services = start_services(config, run_ingest=True)
        try:
            assert services.ingest is not None and services.ingest.wait_subscribed(15)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            rng = random.Random(3)
            for seq in range(5):  # the default same-track rule fires at the third
                event = simulated_event(
                    rng, site="dc1", camera="cam7", seq=seq, posture="rounded",
                    bottom=datetime.now(timezone.utc), track_id="k1",
                )  # fmt: skip
                client.publish(
                    lift_topic("dc1", "cam7"), event.to_payload(), qos=1
                ).wait_for_publish(5)
            (hook,) = webhook.wait_for(1)
            (msg,) = sub.wait_for(1, topic="liftwatch/v1/dc1/alerts")
            time.sleep(0.5)
            client.loop_stop()
            client.disconnect()
        finally:
            stop_services(services)
    assert hook["alert"]["rule"] == "same-track" and hook["alert"]["camera"] == "cam7"
    assert json.loads(msg.payload)["id"] == hook["alert"]["id"]
    assert len(webhook.items) == 1 and len(sub.messages) == 1


def test_lifts_stored_before_a_crash_are_evaluated_when_delivered_again(
    broker: Broker, sqlite_url: str
) -> None:
    """A dashboard killed between committing a batch and running the rules: the broker
    redelivers, the lifts are duplicates, and the alert must still be raised, once."""
    from dashboard.org import Directory, Organisation
    from dashboard.store import open_store
    from dashboard.store.lifts import add_lifts

    rng = random.Random(4)
    events = [
        simulated_event(
            rng,
            site="dc1",
            camera="cam7",
            seq=seq,
            posture="rounded",
            bottom=datetime.now(timezone.utc),
            track_id="k9",
        )
        for seq in range(3)
    ]
    store = open_store(sqlite_url)
    with store.engine.begin() as conn:  # what the killed process committed
        d = Directory(Organisation())
        add_lifts(conn, [(e, d.place(e.site, e.camera, e.bottom)) for e in events], events[0].end)
    store.close()
    with WebhookServer() as webhook:
        config = _config(broker, sqlite_url, webhook.url, "dash-again")
        services = start_services(config, run_ingest=True)
        try:
            assert services.ingest is not None and services.ingest.wait_subscribed(15)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            for _ in range(2):  # delivered again, twice
                for event in events:
                    topic = lift_topic("dc1", "cam7")
                    client.publish(topic, event.to_payload(), qos=1).wait_for_publish(5)
            (hook,) = webhook.wait_for(1)
            time.sleep(1.0)
            client.loop_stop()
            client.disconnect()
            assert services.ingest.counters.duplicates == 6
        finally:
            stop_services(services)
    assert hook["alert"]["rule"] == "same-track" and hook["alert"]["count"] == 3
    assert len(webhook.items) == 1
