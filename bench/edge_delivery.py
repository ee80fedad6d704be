#!/usr/bin/env python3
"""Edge delivery figures: events/s through the outbox and lift end → broker latency.

The outbox half (``--outbox-only``) needs no broker: it pushes realistic ~700-byte lift
event payloads through the cycle the agent and publisher run, add → pending → ack, one event
at a time (the live case: each lift is stored, sent and acknowledged on its own), and also
fills a backlog and drains it (the broker-came-back case), for ``synchronous=NORMAL`` (the
default) and ``FULL``. ``events_per_s`` is the live cycle with the default setting.

    python bench/edge_delivery.py --outbox-only --events 20000 --json out.json
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outbox-only", action="store_true", help="outbox figures, no broker")
    parser.add_argument("--events", type=int, default=20_000, help="events per measurement")
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder for the outbox files (default: temp)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if not args.outbox_only:
        parser.error("only --outbox-only is implemented so far")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        figures = outbox_figures(args.events, Path(tmp))
    figures["events"] = args.events
    figures["cpu_count"] = os.cpu_count()
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
