"""Operations endpoints: Prometheus ``/metrics`` and ``/healthz`` for probes.

Each app gets its own `CollectorRegistry` (kept in ``services.extras``), and the values are
read from the ingest's counters and the database at scrape time, so several apps in one
process (the tests) never see each other's numbers. Neither endpoint needs a login: they
hold counts per site and camera, nothing about a person; a reverse proxy can still restrict
them to the monitoring network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from dashboard.app import Services
from dashboard.deps import ServicesDep
from dashboard.ingest import Histogram, Ingest

router = APIRouter(tags=["operations"])

_REGISTRY = "telemetry.registry"


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=h.cumulative(), sum_value=h.sum)


class DashboardCollector(Collector):
    """Reads one dashboard's ingest counters and database when Prometheus scrapes."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        ingest: Ingest | None = self.services.ingest
        up = GaugeMetricFamily("liftwatch_mqtt_connected", "1 while the ingest is connected")
        up.add_metric([], 1.0 if ingest is not None and ingest.connected else 0.0)
        yield up
        stored = GaugeMetricFamily("liftwatch_events_stored", "Lift events in the database")
        db = GaugeMetricFamily("liftwatch_database_up", "1 when the database answers")
        try:
            stored.add_metric([], float(self.services.store.events_stored()))
            db.add_metric([], 1.0)
        except Exception:
            db.add_metric([], 0.0)
        yield stored
        yield db
        if ingest is not None:
            yield from _ingest_metrics(ingest)


def _ingest_metrics(ingest: Ingest) -> Iterator[Metric]:
    c = ingest.counters
    with c.lock:
        ingested = CounterMetricFamily(
            "liftwatch_events_ingested",
            "Lift events newly stored, by site, camera and posture",
            labels=["site", "camera", "posture"],
        )
        for (site, camera, posture), n in sorted(c.ingested.items()):
            ingested.add_metric([site, camera, posture], n)
        invalid = CounterMetricFamily(
            "liftwatch_invalid_payloads",
            "Messages refused and dropped, by reason (json, schema, version, topic, "
            "topic_mismatch, oversized, rejected)",
            labels=["reason"],
        )
        for reason, n in sorted(c.invalid.items()):
            invalid.add_metric([reason], n)
        singles: list[tuple[str, str, int]] = [
            ("liftwatch_messages_received", "MQTT messages received", c.received),
            ("liftwatch_duplicate_events", "Redelivered events already stored", c.duplicates),
            ("liftwatch_status_messages", "Agent status messages recorded", c.status_messages),
            ("liftwatch_stats_messages", "Agent stats messages recorded", c.stats_messages),
            ("liftwatch_db_write_errors", "Failed database writes (retried)", c.db_errors),
            ("liftwatch_mqtt_connects", "Successful connections to the broker", c.connects),
            (
                "liftwatch_ingest_writer_restarts",
                "Ingest writer processes that died and were replaced",
                c.writer_restarts,
            ),
        ]
        plain = [CounterMetricFamily(name, doc, value=n) for name, doc, n in singles]
        histograms = [
            _histogram(
                "liftwatch_ingest_lag_seconds",
                "Time from a lift's end to its commit in the database",
                c.lag_s,
            ),
            _histogram(
                "liftwatch_db_write_seconds", "Duration of one batch transaction", c.db_write_s
            ),
            _histogram("liftwatch_ingest_batch_size", "Messages per transaction", c.batch_size),
        ]
    yield ingested
    yield invalid
    yield from plain
    yield from histograms


def registry(services: Services) -> CollectorRegistry:
    """This app's registry, made on first use."""
    found: Any = services.extras.get(_REGISTRY)
    if found is None:
        found = CollectorRegistry(auto_describe=False)
        found.register(DashboardCollector(services))
        services.extras[_REGISTRY] = found
    return found


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(registry(services)), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness and readiness for probes")
def healthz(services: ServicesDep) -> JSONResponse:
    """200 while the database answers (503 when not), with the stored count and the broker
    link; a broker outage alone keeps 200, since events wait in the broker meanwhile."""
    ingest: Ingest | None = services.ingest
    try:
        events: int | None = services.store.events_stored()
    except Exception:
        events = None
    body = {
        "status": "ok" if events is not None else "database unavailable",
        "database_ok": events is not None,
        "events_stored": events,
        "mqtt_connected": ingest is not None and ingest.connected,
        "ingest_enabled": ingest is not None,
    }
    return JSONResponse(body, status_code=200 if events is not None else 503)
