#!/usr/bin/env python3
"""Edge delivery figures: events/s through the outbox and lift end → broker latency.

The outbox half (``--outbox-only``) needs no broker: it pushes realistic ~700-byte lift
event payloads through the cycle the agent and publisher run, add → pending → ack, one event
at a time (the live case: each lift is stored, sent and acknowledged on its own), and also
fills a backlog and drains it (the broker-came-back case), for ``synchronous=NORMAL`` (the
default) and ``FULL``. ``events_per_s`` is the live cycle with the default setting.

    python bench/edge_delivery.py --outbox-only --events 20000 --json out.json

The broker half (default, needs ``mosquitto``) runs the agent's real delivery path on
loopback: ``Outbox.add`` → ``Publisher`` → a mosquitto started here → a subscriber.
``latency_p95_ms`` is the time from storing a lift (the moment its end is judged) to the
subscriber receiving it, with lifts arriving at ``--rate`` per second; ``e2e_events_per_s``
is a burst drained through the whole path; ``--outage-s`` stops the broker mid-stream for
that long, keeps the stream going, restarts it and counts what was lost or duplicated.

    python bench/edge_delivery.py --events 2000 --rate 50 --outage-s 30 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from edge.outbox import Outbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.mqtt: the broker

TOPIC = "liftwatch/v1/bench-site/dock-3/lift"
Sync = Literal["NORMAL", "FULL"]


def lift_payload(seq: int, rng: random.Random) -> bytes:
    """A lift event as the agent publishes it (same fields and sizes, made-up values)."""
    end = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seq * 7.3)
    metric = lambda: round(rng.uniform(0, 90), 2)  # noqa: E731
    posture = rng.choice(["hinge", "rounded", "unscorable"])
    record: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "seq": seq,
        "site": "bench-site",
        "camera": "dock-3",
        "track_id": f"{rng.getrandbits(32):08x}",
        "start": (end - timedelta(seconds=2.4)).isoformat(),
        "bottom": (end - timedelta(seconds=1.1)).isoformat(),
        "end": end.isoformat(),
        "posture": posture,
        "confidence": round(rng.random(), 3),
        "reason": None if posture == "hinge" else "trunk flexed, knees straight",
        "view": rng.choice(["side", "oblique", "front"]),
        "metrics": {
            "trunk_flexion_deg": metric(),
            "trunk_flexion_max_deg": metric(),
            "hip_angle_deg": metric(),
            "knee_angle_deg": metric(),
            "hip_shift": metric(),
            "neck_drop_deg": metric(),
            "chord_ratio": metric(),
            "back_curvature": metric(),
            "spine_flexion_deg": metric(),
            "duration_s": metric(),
            "reba_trunk": rng.randint(1, 4),
        },
        "model": "movenet_multipose+movenet_lightning",
        "model_sha256": f"{rng.getrandbits(256):064x}",
        "agent_version": "0.1.0",
    }
    return json.dumps(record, separators=(",", ":")).encode()


def payload_pool(size: int = 1000, seed: int = 0) -> list[bytes]:
    """Payloads built ahead, so the figures time the outbox, not JSON encoding."""
    rng = random.Random(seed)
    return [lift_payload(seq, rng) for seq in range(size)]


def live_cycle(outbox: Outbox, n: int, pool: list[bytes]) -> float:
    """add → pending → ack, one event at a time; returns events/s."""
    start = time.perf_counter()
    for _ in range(n):
        outbox.add(TOPIC, lambda seq: pool[seq % len(pool)])
        for entry in outbox.pending(limit=100):
            outbox.ack(entry.id)
    elapsed = time.perf_counter() - start
    assert outbox.depth() == 0
    return n / elapsed


def backlog(outbox: Outbox, n: int, pool: list[bytes]) -> tuple[float, float]:
    """Store ``n`` events with no broker, then drain them 100 at a time; returns rates."""
    start = time.perf_counter()
    for _ in range(n):
        outbox.add(TOPIC, lambda seq: pool[seq % len(pool)])
    added = time.perf_counter()
    after = 0
    while batch := outbox.pending(limit=100, after_id=after):
        for entry in batch:
            outbox.ack(entry.id)
        after = batch[-1].id
    drained = time.perf_counter()
    assert outbox.depth() == 0
    return n / (added - start), n / (drained - added)


def full_outbox(outbox: Outbox, n: int, pool: list[bytes]) -> float:
    """Adds to an outbox already at ``max_events``, each dropping the oldest; returns adds/s."""
    for _ in range(outbox.max_events - outbox.depth()):
        outbox.add(TOPIC, lambda seq: pool[seq % len(pool)])
    start = time.perf_counter()
    for _ in range(n):
        outbox.add(TOPIC, lambda seq: pool[seq % len(pool)])
    return n / (time.perf_counter() - start)


def outbox_figures(n: int, folder: Path, full_max: int = 20_000) -> dict[str, Any]:
    """Every outbox figure, in fresh files under ``folder``."""
    pool = payload_pool()
    figures: dict[str, Any] = {"payload_bytes": round(sum(map(len, pool)) / len(pool))}
    modes: tuple[Sync, ...] = ("NORMAL", "FULL")
    for mode in modes:
        key = mode.lower()
        with Outbox(folder / f"live-{key}.sqlite", synchronous=mode) as outbox:
            figures[f"{key}_live_events_per_s"] = round(live_cycle(outbox, n, pool))
        with Outbox(folder / f"backlog-{key}.sqlite", synchronous=mode) as outbox:
            add, drain = backlog(outbox, n, pool)
            figures[f"{key}_backlog_add_per_s"] = round(add)
            figures[f"{key}_backlog_drain_per_s"] = round(drain)
    with Outbox(folder / "full.sqlite", max_events=full_max) as outbox:
        figures["normal_full_outbox_add_per_s"] = round(full_outbox(outbox, n, pool))
        figures["full_outbox_dropped"] = outbox.dropped
    figures["events_per_s"] = figures["normal_live_events_per_s"]
    return figures


def _publisher_config(port: int, outbox_path: Path) -> Any:
    from edge.config import AgentConfig, BrokerConfig, OutboxConfig

    return AgentConfig(
        site="bench-site",
        camera="dock-3",
        source="synthetic:0",
        broker=BrokerConfig(host="127.0.0.1", port=port, backoff_initial_s=0.2, backoff_max_s=2),
        outbox=OutboxConfig(path=outbox_path),
    )


def _seq_of(payload: bytes) -> int:
    return int(json.loads(payload)["seq"])


def latency_run(port: int, folder: Path, n: int, rate_hz: float, pool: list[bytes]) -> list[float]:
    """Lift stored → received by a subscriber, in ms, one lift every 1/rate_hz seconds."""
    from edge.publish import Publisher
    from tests.support.mqtt import Subscriber

    stored: dict[int, float] = {}
    with Outbox(folder / "latency.sqlite") as outbox, Subscriber(_Port(port), TOPIC) as sub:
        publisher = Publisher(_publisher_config(port, outbox.path), outbox)
        publisher.start()
        _wait(lambda: publisher.connected, 5.0)
        start = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))
            stored[i] = time.monotonic()
            outbox.add(TOPIC, lambda seq: _with_seq(pool[seq % len(pool)], seq))
            publisher.notify()
        got = sub.wait_for(n, timeout_s=30.0)
        publisher.stop()
    return [(m.received - stored[_seq_of(m.payload)]) * 1000 for m in got]


def burst_run(port: int, folder: Path, n: int, pool: list[bytes]) -> float:
    """Events/s through outbox + publisher + broker + subscriber, as fast as it goes."""
    from edge.publish import Publisher
    from tests.support.mqtt import Subscriber

    with Outbox(folder / "burst.sqlite") as outbox, Subscriber(_Port(port), TOPIC) as sub:
        publisher = Publisher(_publisher_config(port, outbox.path), outbox)
        publisher.start()
        _wait(lambda: publisher.connected, 5.0)
        start = time.monotonic()
        for _ in range(n):
            outbox.add(TOPIC, lambda seq: _with_seq(pool[seq % len(pool)], seq))
            publisher.notify()
        got = sub.wait_for(n, timeout_s=120.0)
        elapsed = got[-1].received - start
        publisher.stop()
    return n / elapsed


def outage_run(
    broker: Any, folder: Path, n: int, rate_hz: float, outage_s: float, pool: list[bytes]
) -> dict[str, Any]:
    """Stream lifts, stop the broker for ``outage_s`` a third of the way in, restart it."""
    from edge.publish import Publisher
    from tests.support.mqtt import Subscriber

    sub = Subscriber(broker, TOPIC, client_id="bench-dashboard", persistent=True)
    with Outbox(folder / "outage.sqlite") as outbox:
        publisher = Publisher(_publisher_config(broker.port, outbox.path), outbox)
        publisher.start()
        _wait(lambda: publisher.connected, 5.0)
        start = time.monotonic()
        down_at, up_at = start + n / rate_hz / 3, None
        for i in range(n):
            now = time.monotonic()
            if up_at is None and now >= down_at:
                broker.stop()
                up_at = now + outage_s
            if up_at is not None and not broker.running and now >= up_at:
                broker.start()
            time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))
            outbox.add(TOPIC, lambda seq: _with_seq(pool[seq % len(pool)], seq))
            publisher.notify()
        if not broker.running:
            time.sleep(max(0.0, (up_at or 0) - time.monotonic()))
            broker.start()
        restarted = time.monotonic()
        with contextlib.suppress(TimeoutError):  # counted as lost below
            sub.wait_until(lambda ms: len({_seq_of(m.payload) for m in ms}) >= n, 60.0)
        caught_up = time.monotonic()
        publisher.stop()
        reconnects = publisher.reconnects
    sub.close()
    seqs = [_seq_of(m.payload) for m in sub.messages]
    return {
        "outage_s": outage_s,
        "outage_events": n,
        "outage_lost": n - len(set(seqs)),
        "outage_duplicates_before_dedup": len(seqs) - len(set(seqs)),
        "outage_catch_up_s": round(caught_up - restarted, 2),
        "outage_reconnects": reconnects,
    }


class _Port:
    """Just enough of a ``Broker`` for a ``Subscriber`` (it only needs ``port``)."""

    def __init__(self, port: int) -> None:
        self.port = port


def _with_seq(payload: bytes, seq: int) -> bytes:
    record = json.loads(payload)
    record["seq"] = seq
    return json.dumps(record, separators=(",", ":")).encode()


def _wait(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("publisher did not connect")
        time.sleep(0.01)


def broker_figures(n: int, rate_hz: float, outage_s: float, folder: Path) -> dict[str, Any]:
    """Latency, end-to-end rate and (if ``outage_s``) an outage, against one mosquitto."""
    import numpy as np

    from tests.support.mqtt import Broker

    pool = payload_pool()
    figures: dict[str, Any] = {}
    with Broker(folder / "broker") as broker:
        latencies = np.array(latency_run(broker.port, folder, n, rate_hz, pool))
        figures["latency_events"] = n
        figures["latency_rate_hz"] = rate_hz
        for q in (50, 95, 99):
            figures[f"latency_p{q}_ms"] = round(float(np.percentile(latencies, q)), 2)
        figures["latency_max_ms"] = round(float(latencies.max()), 2)
        figures["e2e_events_per_s"] = round(burst_run(broker.port, folder, max(n, 5000), pool))
        if outage_s > 0:
            figures.update(outage_run(broker, folder, n, rate_hz, outage_s, pool))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outbox-only", action="store_true", help="outbox figures, no broker")
    parser.add_argument("--events", type=int, default=20_000, help="events per measurement")
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder for the outbox files (default: temp)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--broker-events", type=int, default=1000, help="lifts for the latency")
    parser.add_argument("--rate", type=float, default=50.0, help="lifts/s for the latency run")
    parser.add_argument("--outage-s", type=float, default=0.0, help="broker outage to survive")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        figures = outbox_figures(args.events, Path(tmp))
        if not args.outbox_only:
            broker = broker_figures(args.broker_events, args.rate, args.outage_s, Path(tmp))
            figures.update(broker)
    figures["events"] = args.events
    figures["cpu_count"] = os.cpu_count()
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
