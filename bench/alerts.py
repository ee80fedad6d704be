#!/usr/bin/env python3
"""Alert latency: a lift published at the edge → the alert received on all three channels.

Everything real, on loopback: the edge `Outbox` and `Publisher` put lifts on a mosquitto
started here; the dashboard's `Ingest` stores them (SQLite file, or ``--database-url``) and
its alert engine evaluates the default same-track rule (3 rounded lifts of one track within
10 min) against the database; the dispatcher sends the alert to a local HTTP webhook, an
aiosmtpd server (STARTTLS + AUTH) and MQTT ``liftwatch/v1/{site}/alerts`` (QoS 1).

Each trial uses its own camera (a cooldown is per camera): two rounded lifts of one track
are published and stored, then the third is added to the outbox; the trial's latency runs
from that add to the last of the three channels receiving the alert. ``p95_ms`` over the
trials is the figure (target < 2000 ms).

    python bench/alerts.py --trials 40 --json out/alerts.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: the receivers

from dashboard.app import Services, start_services, stop_services
from dashboard.config import complete
from edge.config import AgentConfig, BrokerConfig, OutboxConfig
from edge.events import alerts_topic, lift_topic, utc_time
from edge.outbox import Outbox
from edge.publish import Publisher
from edge.simulate import simulated_event
from tests.support.alerting import SmtpServer, WebhookServer
from tests.support.mqtt import Broker, Subscriber, make_tls

SITE = "bench-site"
USER, PASSWORD = "alerts@example.com", "bench-password"


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s} s")
        time.sleep(0.005)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(trials: int, database_url: str | None, folder: Path) -> dict[str, Any]:
    tls = make_tls(folder / "tls")
    rng = random.Random(7)
    with (
        Broker(folder / "broker") as broker,
        WebhookServer() as webhook,
        SmtpServer(tls, USER, PASSWORD) as smtp,
        Subscriber(broker, alerts_topic(SITE)) as sub,
    ):
        config = complete(
            {
                "database_url": database_url or f"sqlite:///{folder / 'dashboard.db'}",
                "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "bench-dash"},
                "alerts": {
                    "rules": [
                        {
                            "id": "same-track",
                            "kind": "same_track",
                            "count": 3,
                            "window_min": 10,
                            "cooldown_min": 10,
                        },
                    ],
                    "webhook": {"url": webhook.url},
                    "email": {
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "security": "starttls",
                        "ca_file": str(tls.ca_file),
                        "username": USER,
                        "password": PASSWORD,
                        "from": "liftwatch@example.com",
                        "to": ["supervisor@example.com"],
                    },
                },
            },
            None,
            env={},
        )
        services: Services = start_services(config, run_ingest=True)
        agent = AgentConfig(
            site=SITE,
            camera="edge-0",
            source="synthetic:0",
            broker=BrokerConfig(host="127.0.0.1", port=broker.port, backoff_initial_s=0.2),
            outbox=OutboxConfig(path=folder / "outbox.sqlite"),
        )
        outbox = Outbox(folder / "outbox.sqlite")
        publisher = Publisher(agent, outbox)
        try:
            assert services.ingest is not None
            if not services.ingest.wait_subscribed(15.0):
                raise TimeoutError("ingest not subscribed within 15 s")
            publisher.start()
            _wait(lambda: publisher.connected, 15.0, "edge publisher connected")
            store = services.store

            def publish(camera: str, track: str) -> None:
                def payload(seq: int) -> bytes:
                    event = simulated_event(
                        rng, site=SITE, camera=camera, seq=seq, posture="rounded",
                        bottom=utc_time(time.time()), track_id=track,
                    )  # fmt: skip
                    return event.to_payload()

                outbox.add(lift_topic(SITE, camera), payload)
                publisher.notify()

            latencies: list[float] = []
            per_channel: dict[str, list[float]] = {"webhook": [], "email": [], "mqtt": []}
            for i in range(trials):
                camera, track = f"cam-{i}", f"trk{i}"
                before = store.events_stored()
                publish(camera, track)
                publish(camera, track)
                _wait(lambda b=before: store.events_stored() >= b + 2, 15.0, "two lifts stored")
                time.sleep(0.05)
                t0 = time.monotonic()
                publish(camera, track)
                webhook.wait_for(i + 1, 15.0)
                smtp.wait_for(i + 1, 15.0)
                sub.wait_for(i + 1, 15.0)
                arrived = {
                    "webhook": webhook.arrived[i],
                    "email": smtp.arrived[i],
                    "mqtt": sub.messages[i].received,
                }
                if json.loads(sub.messages[i].payload)["camera"] != camera:
                    raise RuntimeError(f"trial {i}: alert for another camera")
                for name, at in arrived.items():
                    per_channel[name].append((at - t0) * 1000)
                latencies.append((max(arrived.values()) - t0) * 1000)
                time.sleep(0.1)
        finally:
            publisher.stop()
            outbox.close()
            stop_services(services)
        if len(webhook.items) != trials or len(smtp.items) != trials:
            raise RuntimeError("a channel received an alert more than once")
    return {
        "trials": trials,
        "database": "postgresql" if database_url else "sqlite",
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(_percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "p95_ms_by_channel": {k: round(_percentile(v, 95), 1) for k, v in per_channel.items()},
        "target_p95_ms": 2000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="liftwatch-alerts-") as tmp:
        figures = run(args.trials, args.database_url, Path(tmp))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["p95_ms"] < figures["target_p95_ms"] else 1


if __name__ == "__main__":
    sys.exit(main())
