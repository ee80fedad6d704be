"""Rules fire at the right count against the database, once per window, across workers."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from dashboard.alerts.engine import AlertEngine
from dashboard.alerts.rules import Rule
from dashboard.alerts.store import AlertFilter, list_alerts, replace_rules
from dashboard.org import Directory, Organisation
from dashboard.store import Store, open_store, schema
from dashboard.store.lifts import add_lifts
from dashboard.store.organisation import replace_organisation
from edge.events import LiftEvent, PostureLabel
from edge.simulate import simulated_event

ORG = Organisation.model_validate(
    {
        "sites": [
            {
                "id": "s1",
                "timezone": "Europe/Berlin",
                "shifts": [
                    {"name": "day", "start": "06:00", "end": "18:00"},
                    {"name": "night", "start": "18:00", "end": "06:00"},
                ],
                "zones": [{"id": "dock"}, {"id": "aisle"}],
                "teams": [{"id": "red"}, {"id": "blue"}],
                "cameras": [
                    {"id": "c1", "zone": "dock", "team": "red"},
                    {"id": "c2", "zone": "dock", "team": "red"},
                    {"id": "c3", "zone": "aisle", "team": "blue"},
                ],
            }
        ]
    }
)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
CHANNELS = ("webhook", "email", "mqtt")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Lifts:
    """Makes events and stores them as the ingest does (placed, one transaction a batch)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rng = random.Random(5)
        self.seq = 0
        self.directory = Directory(ORG)

    def make(
        self, at: datetime, posture: PostureLabel = "rounded", camera: str = "c1", track: str = "t1"
    ) -> LiftEvent:
        self.seq += 1
        return simulated_event(
            self.rng, site="s1", camera=camera, seq=self.seq, bottom=at, posture=posture,
            track_id=track,
        )  # fmt: skip

    def store_all(self, events: list[LiftEvent]) -> list[LiftEvent]:
        items = [(e, self.directory.place(e.site, e.camera, e.bottom)) for e in events]
        with self.store.engine.begin() as conn:
            return add_lifts(conn, items, NOW).stored


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(database_url)
    with s.engine.begin() as conn:
        replace_organisation(conn, ORG)
    yield s
    s.close()


def setup(store: Store, *rules: Rule) -> tuple[AlertEngine, Lifts, Clock]:
    with store.engine.begin() as conn:
        replace_rules(conn, rules, None)
    clock = Clock(NOW)
    return AlertEngine(store.engine, CHANNELS, clock=clock), Lifts(store), clock


def alerts(store: Store) -> list:  # type: ignore[type-arg]
    with store.engine.connect() as conn:
        return list(reversed(list_alerts(conn, AlertFilter(limit=1000))[0]))


def feed(engine: AlertEngine, lifts: Lifts, events: list[LiftEvent]) -> list:  # type: ignore[type-arg]
    return engine.on_stored(lifts.store_all(events))


SAME_TRACK = Rule(id="same-track", kind="same_track", count=3, window_min=10, cooldown_min=10)


def test_same_track_fires_at_the_third_rounded_lift_of_one_track(store: Store) -> None:
    engine, lifts, _ = setup(store, SAME_TRACK)
    t = NOW - timedelta(minutes=9)
    assert feed(engine, lifts, [lifts.make(t)]) == []
    assert feed(engine, lifts, [lifts.make(t, "hinge"), lifts.make(t, track="other")]) == []
    assert feed(engine, lifts, [lifts.make(t + timedelta(minutes=4), camera="c2")]) == []
    assert feed(engine, lifts, [lifts.make(t + timedelta(minutes=5))]) == []
    assert alerts(store) == []
    fired = feed(engine, lifts, [lifts.make(t + timedelta(minutes=9))])
    assert [f.new for f in fired] == [True]
    (alert,) = alerts(store)
    assert (alert.rule_id, alert.scope_kind, alert.camera, alert.zone) == (
        "same-track", "camera", "c1", "dock",
    )  # fmt: skip
    assert alert.value == 3
    assert alert.count == 4  # rounded lifts at the camera in the window, both tracks
    assert "camera c1 (zone dock)" in alert.text and "one person made 3" in alert.text
    assert "t1" not in alert.text and alert.team is None
    assert [d.channel for d in alert.deliveries] == sorted(CHANNELS)
    assert all(d.status == "pending" and d.attempts == 0 for d in alert.deliveries)


def test_same_track_needs_the_lifts_within_the_window(store: Store) -> None:
    engine, lifts, _ = setup(store, SAME_TRACK)
    t = NOW - timedelta(minutes=30)
    for minutes in (0, 6, 12, 18):
        feed(engine, lifts, [lifts.make(t + timedelta(minutes=minutes))])
    assert alerts(store) == []


@pytest.mark.parametrize("scope", ["camera", "zone"])
def test_rate_rule_fires_at_n_and_not_before(store: Store, scope: str) -> None:
    rule = Rule(id="rate", kind="rate", scope=scope, count=5, window_min=10, cooldown_min=30)
    engine, lifts, _ = setup(store, rule)
    t = NOW - timedelta(minutes=5)
    cameras = ["c1", "c2", "c1", "c2", "c3"]  # c3 is another zone
    for i, cam in enumerate(cameras):
        feed(engine, lifts, [lifts.make(t + timedelta(seconds=i), camera=cam, track=f"k{i}")])
    assert alerts(store) == []
    fired = feed(engine, lifts, [lifts.make(t + timedelta(seconds=9), camera="c1", track="k9")])
    if scope == "camera":
        assert fired == []
        for i in range(2):
            feed(engine, lifts, [lifts.make(t + timedelta(seconds=20 + i), camera="c1")])
        (alert,) = alerts(store)
        assert (alert.camera, alert.count) == ("c1", 5)
    else:
        assert [f.new for f in fired] == [True]
        (alert,) = alerts(store)
        assert (alert.scope_kind, alert.zone, alert.camera, alert.count) == (
            "zone",
            "dock",
            None,
            5,
        )
        assert "zone dock" in alert.text and "5 rounded-back lifts within 10 min" in alert.text


def test_team_ratio_needs_enough_scored_lifts_and_a_ratio_above_the_limit(store: Store) -> None:
    rule = Rule(id="ratio", kind="team_ratio", ratio_pct=30, min_scored=10, cooldown_min=60)
    engine, lifts, _ = setup(store, rule)
    t = NOW - timedelta(minutes=30)
    # 4 of 4 rounded: far above 30 % but too few scored lifts
    feed(engine, lifts, [lifts.make(t, track=f"a{i}") for i in range(2)])
    feed(engine, lifts, [lifts.make(t, camera="c2", track=f"b{i}") for i in range(2)])
    assert alerts(store) == []
    feed(engine, lifts, [lifts.make(t, "hinge", track=f"h{i}") for i in range(9)])
    feed(engine, lifts, [lifts.make(t, "unscorable", track=f"u{i}") for i in range(5)])
    # 4 / 13 = 30.8 % > 30 %, but hinge lifts alone never fire: evaluated on the next rounded
    assert alerts(store) == []
    feed(engine, lifts, [lifts.make(t, "hinge", track="h9")])
    # now 4 / 14 = 28.6 %: a rounded lift makes it 5 / 15 = 33.3 %
    feed(engine, lifts, [lifts.make(t, camera="c3", track="blue")])  # the other team
    assert alerts(store) == []
    fired = feed(engine, lifts, [lifts.make(t + timedelta(minutes=1), track="x")])
    assert [f.new for f in fired] == [True]
    (alert,) = alerts(store)
    assert (alert.scope_kind, alert.team, alert.shift, alert.count) == ("team", "red", "day", 5)
    assert alert.value == pytest.approx(100 * 5 / 15)
    assert "team red, day shift" in alert.text and "33.3 %" in alert.text


def test_cooldown_counts_into_the_open_alert_then_a_new_window_raises_a_new_one(
    store: Store,
) -> None:
    rule = Rule(id="rate", kind="rate", scope="camera", count=3, window_min=10, cooldown_min=10)
    engine, lifts, clock = setup(store, rule)
    t = NOW - timedelta(minutes=1)
    feed(engine, lifts, [lifts.make(t + timedelta(seconds=i)) for i in range(3)])
    for i in range(4):
        clock.now = NOW + timedelta(minutes=2 * i)
        fired = feed(engine, lifts, [lifts.make(clock.now - timedelta(seconds=1))])
        assert [f.new for f in fired] == [False]
    (alert,) = alerts(store)
    assert alert.count == 7 and alert.last_at == clock.now
    clock.now = NOW + timedelta(minutes=10, seconds=1)
    fired = feed(engine, lifts, [lifts.make(clock.now - timedelta(seconds=1))])
    assert [f.new for f in fired] == [True]
    first, second = alerts(store)
    assert first.count == 7
    assert second.count == 4  # rounded lifts in its own 10-minute window (+2, +4, +6, +10 min)


def test_old_lifts_replayed_after_an_outage_raise_no_alert(store: Store) -> None:
    engine, lifts, _ = setup(store, SAME_TRACK)
    t = NOW - timedelta(hours=3)
    feed(engine, lifts, [lifts.make(t + timedelta(seconds=i)) for i in range(5)])
    assert alerts(store) == []


def test_a_flood_of_rounded_lifts_gives_one_alert_per_window_with_the_count(
    store: Store,
) -> None:
    rule = Rule(id="rate", kind="rate", scope="camera", count=10, window_min=10, cooldown_min=10)
    engine, lifts, clock = setup(store, rule, SAME_TRACK)
    start = NOW - timedelta(minutes=1)
    events = [
        lifts.make(start + timedelta(milliseconds=60 * i), track=f"t{i % 400}") for i in range(1000)
    ]
    fired = []
    for i in range(0, 1000, 25):
        clock.now = start + timedelta(milliseconds=60 * (i + 25))
        fired += feed(engine, lifts, events[i : i + 25])
    by_rule = {}
    for a in alerts(store):
        by_rule.setdefault(a.rule_id, []).append(a)
    assert [a.count for a in by_rule["rate"]] == [1000]
    assert [a.count for a in by_rule["same-track"]] == [1000]
    assert sum(f.new for f in fired) == 2
    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.alert_deliveries)).all()
    assert len(rows) == 2 * len(CHANNELS)


def race(engines: list[AlertEngine], events: list[LiftEvent]) -> list[list]:  # type: ignore[type-arg]
    """Each engine evaluates ``events`` at the same moment, in its own thread."""
    barrier = threading.Barrier(len(engines))
    results: list[list] = [[] for _ in engines]  # type: ignore[type-arg]

    def run(i: int) -> None:
        barrier.wait()
        results[i] = engines[i].on_stored(events)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return results


def test_two_workers_evaluating_at_once_raise_one_alert(database_url: str) -> None:
    """Two ingest workers (own engines, own connections) see the same window at once."""
    first = open_store(database_url)
    second = open_store(database_url)
    try:
        with first.engine.begin() as conn:
            replace_organisation(conn, ORG)
        rule = Rule(id="rate", kind="rate", scope="camera", count=3, window_min=10, cooldown_min=10)
        engine_a, lifts, clock = setup(first, rule)
        engine_b = AlertEngine(second.engine, CHANNELS, clock=clock)
        for round_no in range(10):
            camera = ["c1", "c2", "c3"][round_no % 3]
            clock.now = NOW + timedelta(minutes=11 * round_no)
            batch = lifts.store_all(
                [lifts.make(clock.now - timedelta(seconds=i), camera=camera) for i in range(3)]
            )
            results = race([engine_a, engine_b], batch)
            news = [f.new for r in results for f in r]
            assert sorted(news) == [False, True], round_no
        found = alerts(first)
        assert len(found) == 10
        assert all(a.count == 3 for a in found)
        with first.engine.connect() as conn:
            assert len(conn.execute(select(schema.alert_deliveries)).all()) == 10 * len(CHANNELS)
    finally:
        first.close()
        second.close()
