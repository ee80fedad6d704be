#!/usr/bin/env python3
"""Dashboard API figures: the 30-day team summary over a million lifts, on SQLite.

Seeds ``--events`` simulated lifts (`edge.simulate`) spread over the last 30 days across a
site of 24 cameras, 6 teams, 4 zones and 3 shifts, stored through `add_lifts` (the ingest's
code path: rows, hourly roll-ups and camera counters) in batches of ``--batch``. Then it
asks the real app (in-process ASGI client, bearer token of a viewer) for
``GET /api/v1/metrics?group_by=team`` over the 30 days ``--requests`` times and reports
``p95_ms`` (target < 100 ms). For comparison the same run times the daily 30-day series,
the first page of the lift list and the same team totals counted straight from ``lifts``.

    python bench/api.py --events 1000000 --json out/api.json
    python bench/api.py --events 1000000 --db out/bench-api.db   # keep and reuse the seed
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dashboard.app import create_app
from dashboard.auth import create_token, create_user
from dashboard.config import complete
from dashboard.org import Directory, Organisation
from dashboard.store import Store, open_store, schema
from dashboard.store.lifts import add_lifts
from dashboard.store.organisation import replace_organisation
from edge.events import LiftEvent
from edge.simulate import Mix, simulated_event

DAYS = 30
CAMERAS = 24
TEAMS = 6
ZONES = 4
SITE = "dc-bench"


def organisation() -> Organisation:
    return Organisation.model_validate(
        {
            "sites": [
                {
                    "id": SITE,
                    "timezone": "Europe/Berlin",
                    "shifts": [
                        {"name": "early", "start": "06:00", "end": "14:00"},
                        {"name": "late", "start": "14:00", "end": "22:00"},
                        {"name": "night", "start": "22:00", "end": "06:00"},
                    ],
                    "zones": [{"id": f"zone-{z}"} for z in range(ZONES)],
                    "teams": [{"id": f"team-{t}"} for t in range(TEAMS)],
                    "cameras": [
                        {
                            "id": f"cam-{c:02d}",
                            "zone": f"zone-{c % ZONES}",
                            "team": f"team-{c % TEAMS}",
                        }
                        for c in range(CAMERAS)
                    ],
                }
            ]
        }
    )


def events(n: int, end: datetime, seed: int = 1) -> Iterator[LiftEvent]:
    """``n`` lifts in time order over the ``DAYS`` days before ``end``, busier by day."""
    rng = random.Random(seed)
    span = DAYS * 86400.0
    seq = [0] * CAMERAS
    start = end - timedelta(days=DAYS)
    for i in range(n):
        at = start + timedelta(seconds=span * (i + rng.random()) / n)
        camera = rng.randrange(CAMERAS)
        mix = Mix(rounded=0.1 + 0.04 * (camera % TEAMS), unscorable=0.1)
        yield simulated_event(
            rng, site=SITE, camera=f"cam-{camera:02d}", seq=seq[camera], bottom=at, mix=mix
        )
        seq[camera] += 1


def seed(store: Store, n: int, batch: int, end: datetime) -> float:
    """Store ``n`` lifts through `add_lifts`; returns the seconds it took."""
    org = organisation()
    directory = Directory(org)
    began = time.perf_counter()
    with store.engine.begin() as conn:
        replace_organisation(conn, org)
    pending: list[Any] = []
    for k, event in enumerate(events(n, end), 1):
        pending.append((event, directory.place(event.site, event.camera, event.bottom)))
        if len(pending) >= batch or k == n:
            with store.engine.begin() as conn:
                add_lifts(conn, pending, datetime.now(timezone.utc))
            pending = []
            print(f"\rseeded {k:,} / {n:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return time.perf_counter() - began


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm caches and the connection pool
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "max_ms": round(max(values), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000, help="lifts per transaction")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to keep (reused)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="liftwatch-bench-api-")
    db = args.db or Path(tmp.name) / "bench.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    store = open_store(url)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    stored = store.events_stored()
    seed_s = None
    if stored == 0:
        seed_s = seed(store, args.events, args.batch, end)
        stored = store.events_stored()
    elif stored != args.events:
        print(
            f"{db} holds {stored:,} lifts, not {args.events:,}: use another --db", file=sys.stderr
        )
        return 2
    with store.engine.connect() as conn:
        hourly_rows = conn.execute(select(func.count()).select_from(schema.lift_hourly)).scalar()
        first, last = conn.execute(
            select(func.min(schema.lifts.c.bottom), func.max(schema.lifts.c.bottom))
        ).one()
    with store.engine.begin() as conn:
        name = f"bench-{time.time_ns()}"
        create_user(conn, name, "bench password 1", "viewer")
        token = create_token(conn, name, "bench")[1]

    # The seed's own period, so a reused file measures the same 30 days.
    to = last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    frm = to - timedelta(days=DAYS)
    cfg = complete({"database_url": url, "mqtt": {"enabled": False}}, None, env={})
    figures: dict[str, Any] = {
        "events": stored,
        "days": DAYS,
        "cameras": CAMERAS,
        "teams": TEAMS,
        "hourly_rows": hourly_rows,
        "seed_s": None if seed_s is None else round(seed_s, 1),
        "seed_per_s": None if seed_s is None else round(stored / seed_s),
        "db_mb": round(db.stat().st_size / 1e6, 1),
        "requests": args.requests,
    }
    with TestClient(create_app(cfg, ingest=False)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        params = {"group_by": "team", "from": frm.isoformat(), "to": to.isoformat(), "site": SITE}

        def team_summary() -> None:
            r = client.get("/api/v1/metrics", params=params)
            r.raise_for_status()
            groups = r.json()["groups"]
            assert len(groups) == TEAMS and sum(g["lifts"] for g in groups) > 0, groups

        figures["team_summary"] = summary(timed(team_summary, args.requests))
        figures["team_summary"]["lifts_counted"] = sum(
            g["lifts"] for g in client.get("/api/v1/metrics", params=params).json()["groups"]
        )
        daily = {"days": DAYS, "site": SITE, "last": (to - timedelta(hours=1)).date().isoformat()}
        figures["daily_30"] = summary(
            timed(lambda: client.get("/api/v1/metrics/daily", params=daily).raise_for_status(), 50)
        )
        figures["lift_page"] = summary(
            timed(
                lambda: client.get(
                    "/api/v1/lifts", params={"site": SITE, "posture": "rounded", "limit": 50}
                ).raise_for_status(),
                50,
            )
        )
    lifts = schema.lifts.c

    def raw_count() -> None:
        with store.engine.connect() as conn:
            conn.execute(
                select(lifts.team, lifts.posture, func.count())
                .where(lifts.bottom >= frm, lifts.bottom < to)
                .group_by(lifts.team, lifts.posture)
            ).all()

    figures["from_lifts_table"] = summary(timed(raw_count, 5))
    figures["p95_ms"] = figures["team_summary"]["p95_ms"]
    figures["met"] = figures["p95_ms"] < 100
    figures["first_lift"], figures["last_lift"] = first.isoformat(), last.isoformat()
    store.close()
    tmp.cleanup()

    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
