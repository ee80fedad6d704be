"""/metrics and /healthz of a running app whose ingest reads a real Mosquitto."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dashboard.app import create_app
from dashboard.config import complete
from edge.events import lift_topic
from tests.support.events import Publisher, lift_events, lift_messages, wait_until
from tests.support.mqtt import HOST, Broker


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_and_health_follow_the_ingest(broker: Broker, database_url: str) -> None:
    cfg = complete(
        {
            "database_url": database_url,
            "mqtt": {"host": HOST, "port": broker.port, "client_id": "telemetry-test"},
        },
        None,
    )
    events = lift_events(120, cameras=["c1", "c2"])
    with TestClient(create_app(cfg)) as client:
        ingest = client.app.state.services.ingest  # type: ignore[attr-defined]
        assert ingest.wait_subscribed(15.0)
        with Publisher(broker.port) as pub:
            pub.publish_all(lift_messages(events))
            pub.publish_all(lift_messages(events[:5]))
            pub.publish(lift_topic("s1", "c1"), b"{broken")
            pub.wait()
        wait_until(lambda: client.get("/healthz").json()["events_stored"] == 120)
        wait_until(lambda: ingest.counters.duplicates == 5 and ingest.counters.invalid)

        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() | {"events_stored": 120, "mqtt_connected": True} == health.json()
        assert health.json()["database_ok"] is True

        m = samples(client)
        ingested = {
            labels: v
            for (name, labels), v in m.items()
            if name == "liftwatch_events_ingested_total"
        }
        assert sum(ingested.values()) == 120
        c1 = sum(v for labels, v in ingested.items() if ("camera", "c1") in labels)
        assert c1 == 60
        assert m[("liftwatch_invalid_payloads_total", (("reason", "json"),))] == 1
        assert m[("liftwatch_duplicate_events_total", ())] == 5
        assert m[("liftwatch_mqtt_connected", ())] == 1
        assert m[("liftwatch_events_stored", ())] == 120
        assert m[("liftwatch_ingest_lag_seconds_count", ())] == 120
        assert m[("liftwatch_ingest_lag_seconds_bucket", (("le", "+Inf"),))] == 120
        assert m[("liftwatch_db_write_seconds_count", ())] >= 1
        assert m[("liftwatch_ingest_writer_restarts_total", ())] == 0

        # a second app in the same process has its own numbers
        quiet = complete({"database_url": database_url}, None)
        with TestClient(create_app(quiet, ingest=False)) as other:
            om = samples(other)
            assert om[("liftwatch_mqtt_connected", ())] == 0
            assert om[("liftwatch_events_stored", ())] == 120
            assert not any(name.startswith("liftwatch_events_ingested") for name, _ in om)
            assert other.get("/healthz").json()["mqtt_connected"] is False


def test_health_is_503_without_a_database(tmp_path: Path) -> None:
    db = tmp_path / "gone.db"
    cfg = complete({"database_url": f"sqlite:///{db}"}, None)
    with TestClient(create_app(cfg, ingest=False)) as client:
        assert client.get("/healthz").status_code == 200
        client.app.state.services.store.engine.dispose()  # type: ignore[attr-defined]
        for path in tmp_path.glob("gone.db*"):
            path.unlink()
        response = client.get("/healthz")
        assert response.status_code == 503
        assert json.loads(response.text)["database_ok"] is False
        assert samples(client)[("liftwatch_database_up", ())] == 0
