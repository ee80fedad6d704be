from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from dashboard.org import Directory, Organisation
from dashboard.store import open_store, schema
from dashboard.store.cameras import list_cameras, possibly_lost
from dashboard.store.lifts import add_lifts, flex_bin
from edge.events import LiftEvent
from edge.simulate import simulated_event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ORG = Organisation.model_validate(
    {
        "sites": [
            {
                "id": "s1",
                "timezone": "UTC",
                "shifts": [{"name": "day", "start": "06:00", "end": "18:00"}],
                "teams": [{"id": "red"}],
                "cameras": [{"id": "c1", "team": "red"}],
            }
        ]
    }
)


def _events(n: int, camera: str = "c1", seq0: int = 0) -> list[LiftEvent]:
    rng = random.Random(7)
    return [
        simulated_event(
            rng, site="s1", camera=camera, seq=seq0 + i, bottom=T0 + timedelta(minutes=7 * i)
        )
        for i in range(n)
    ]


def _add(url: str, events: list[LiftEvent]) -> tuple[int, int]:
    store = open_store(url)
    d = Directory(ORG)
    with store.engine.begin() as conn:
        result = add_lifts(conn, [(e, d.place(e.site, e.camera, e.bottom)) for e in events], T0)
    store.close()
    return len(result.stored), result.duplicates


def test_redelivered_events_are_stored_and_counted_once(database_url: str) -> None:
    events = _events(40)
    assert _add(database_url, events[:30]) == (30, 0)
    assert _add(database_url, events[20:] + events[35:]) == (10, 15)
    store = open_store(database_url)
    with store.engine.connect() as conn:
        hourly = schema.lift_hourly.c
        totals = conn.execute(
            select(func.sum(hourly.lifts), func.sum(hourly.rounded), func.sum(hourly.flex_n))
        ).one()
        rows = conn.execute(select(schema.lifts.c.posture, schema.lifts.c.team)).all()
    assert store.events_stored() == 40
    assert totals == (40, sum(e.posture == "rounded" for e in events), 40)
    assert {team for _, team in rows} == {"red"}


def test_roll_up_hours_and_flexion_histogram_match_the_lifts(database_url: str) -> None:
    events = _events(25)
    _add(database_url, events)
    store = open_store(database_url)
    h = schema.lift_hourly
    with store.engine.connect() as conn:
        per_hour = dict(conn.execute(select(h.c.hour, h.c.lifts)).all())
        flex = conn.execute(select(*(func.sum(h.c[c]) for c in schema.FLEX_COLUMNS))).one()
    expected: dict[datetime, int] = {}
    bins = [0] * schema.FLEX_BINS
    for e in events:
        hour = e.bottom.replace(minute=0, second=0, microsecond=0)
        expected[hour] = expected.get(hour, 0) + 1
        bins[flex_bin(e.metrics.trunk_flexion_max_deg or 0.0)] += 1
    assert per_hour == expected
    assert list(flex) == bins


def test_camera_sequence_gap_shows_possibly_lost_events(database_url: str) -> None:
    events = _events(10)
    _add(database_url, events[:4] + events[7:])  # seq 4, 5, 6 missing
    store = open_store(database_url)
    with store.engine.connect() as conn:
        (cam,) = list_cameras(conn)
    assert (cam.seq_min, cam.seq_max, cam.seq_count) == (0, 9, 7)
    assert possibly_lost(cam) == 3
    _add(database_url, events[4:6])  # late redelivery fills most of the gap
    with store.engine.connect() as conn:
        (cam,) = list_cameras(conn)
    assert possibly_lost(cam) == 1
    assert cam.last_lift == events[-1].bottom


def test_rows_are_stored_exactly_as_sqlalchemy_stores_them(database_url: str) -> None:
    """add_lifts sends its rows through the driver; the stored values (on SQLite the time text
    that range queries compare) must equal what a plain SQLAlchemy insert writes."""
    from sqlalchemy import insert, text

    from dashboard.store.lifts import lift_row

    events = _events(3)
    events[0] = events[0].model_copy(update={"bottom": T0, "start": T0, "end": T0})  # .000000
    d = Directory(ORG)
    placed = [(e, d.place(e.site, e.camera, e.bottom)) for e in events]
    store = open_store(database_url)
    raw = text("SELECT * FROM lifts ORDER BY event_id")
    with store.engine.begin() as conn:
        add_lifts(conn, placed, T0)
        ours = [tuple(r) for r in conn.execute(raw)]
        conn.execute(schema.lifts.delete())
        conn.execute(insert(schema.lifts), [lift_row(e, p, T0) for e, p in placed])
        reference = [tuple(r) for r in conn.execute(raw)]
    store.close()
    assert ours == reference


def test_sqlite_time_text_matches_sqlalchemy_for_any_zone_and_refuses_naive() -> None:
    from sqlalchemy.dialects import sqlite

    from dashboard.store.lifts import sqlite_utc_text

    dialect = sqlite.dialect()
    own = schema.lifts.c.bottom.type.dialect_impl(dialect).bind_processor(dialect)
    assert own is not None
    cet = timezone(timedelta(hours=1))
    for value in (T0, T0.replace(microsecond=7), T0.astimezone(cet), datetime(9, 1, 2, tzinfo=cet)):
        assert sqlite_utc_text(value) == own(value)
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(datetime(2026, 1, 1))
