from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dashboard.metrics import (
    CursorError,
    Days,
    Filters,
    GroupMetrics,
    LiftQuery,
    Window,
    camera_health,
    daily,
    decode_cursor,
    list_lifts,
    median_from_histogram,
    summarise,
)
from dashboard.store import open_store
from tests.support.seed import MONDAY_END, MONDAY_START, lift, seed, week


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


MONDAY = Window(MONDAY_START, MONDAY_END)


@pytest.fixture
def seeded(database_url: str) -> str:
    seed(database_url, week())
    return database_url


def _summary(url: str, dims: tuple, period: Window | Days, **filters: str) -> list[GroupMetrics]:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            return summarise(conn, dims, period, Filters(**filters), min_group_lifts=5)
    finally:
        store.close()


def test_team_metrics_match_hand_computed_values(seeded: str) -> None:
    _blue, red = _summary(seeded, ("team",), MONDAY)
    assert (red.site, red.team) == ("s1", "red")
    assert (red.lifts, red.hinge, red.rounded, red.unscorable) == (6, 3, 2, 1)
    assert red.risky_ratio == pytest.approx(2 / 5, abs=1e-4)
    assert red.coverage == pytest.approx(5 / 6, abs=1e-4)
    assert red.active_hours == 4  # 08, 09, 10 and 13 UTC
    assert red.lifts_per_active_hour == pytest.approx(1.5)
    # 42, 47, 52 | 58, 61, 63: half (3) is reached in the 50-55° bin -> its top edge
    assert red.median_trunk_flexion_deg == pytest.approx(55.0)
    assert red.hidden is False


def test_small_groups_show_their_count_only(seeded: str) -> None:
    blue = _summary(seeded, ("team",), MONDAY)[0]
    assert blue.team == "blue"
    assert blue.lifts == 3
    assert blue.hidden is True
    assert (blue.hinge, blue.rounded, blue.unscorable) == (None, None, None)
    assert blue.risky_ratio is None
    assert blue.coverage is None
    assert blue.median_trunk_flexion_deg is None
    assert blue.risky_ratio_delta is None


def test_trend_compares_with_the_period_before(seeded: str) -> None:
    blue, red = _summary(seeded, ("team",), MONDAY)
    assert red.previous_lifts == 5
    assert red.previous_risky_ratio == pytest.approx(0.2)
    assert red.risky_ratio_delta == pytest.approx(0.4 - 0.2)
    assert blue.previous_lifts == 0
    assert blue.previous_risky_ratio is None


def test_zone_camera_and_shift_groupings(seeded: str) -> None:
    zones = {m.zone: m for m in _summary(seeded, ("zone",), MONDAY)}
    assert zones["dock"].lifts == 7  # c1 (red) 4 + c3 (blue) 3
    assert zones["dock"].risky_ratio == pytest.approx(2 / 6, abs=1e-4)
    assert zones["aisle"].lifts == 2
    assert zones["aisle"].hidden
    cameras = {m.camera: m for m in _summary(seeded, ("camera",), MONDAY)}
    assert {c: (m.lifts, m.hidden) for c, m in cameras.items()} == {
        "c1": (4, True),
        "c2": (2, True),
        "c3": (3, True),
    }
    shifts = {m.shift: m.lifts for m in _summary(seeded, ("shift",), MONDAY)}
    assert shifts == {"early": 8, "late": 1}  # 13:00 UTC is 14:00 in Berlin


def test_filters_narrow_a_summary(seeded: str) -> None:
    (only,) = _summary(seeded, ("team",), MONDAY, zone="aisle")
    assert (only.team, only.lifts) == ("red", 2)
    assert _summary(seeded, ("team",), MONDAY, site="elsewhere") == []


def test_night_shift_lifts_count_for_the_day_the_shift_started(seeded: str) -> None:
    (monday,) = _summary(seeded, ("team", "day"), Days(date(2026, 3, 2), date(2026, 3, 2)))[1:]
    assert (monday.team, monday.day) == ("red", date(2026, 3, 2))
    assert monday.lifts == 7  # the six daytime lifts and the 01:00 Tuesday night-shift lift
    assert monday.risky_ratio == pytest.approx(3 / 6)
    night = _summary(seeded, ("shift",), Days(date(2026, 3, 3), date(2026, 3, 3)))
    assert night == []


def test_daily_series_has_every_day(seeded: str) -> None:
    store = open_store(seeded)
    with store.engine.connect() as conn:
        series = daily(conn, Days(date(2026, 3, 1), date(2026, 3, 3)), min_group_lifts=5)
    store.close()
    by_team = {s.team: s for s in series}
    red = by_team["red"]
    assert [p.day for p in red.points] == [date(2026, 3, d) for d in (1, 2, 3)]
    assert [p.lifts for p in red.points] == [5, 7, 0]
    assert [p.risky_ratio for p in red.points] == [0.2, 0.5, None]
    assert [p.hidden for p in red.points] == [False, False, False]
    assert [p.hidden for p in by_team["blue"].points] == [False, True, False]


def test_windows_cover_whole_hours() -> None:
    w = Window.covering(_utc(2026, 3, 2, 8, 30), _utc(2026, 3, 2, 10, 0, 1))
    assert (w.start, w.end) == (_utc(2026, 3, 2, 8), _utc(2026, 3, 2, 11))
    assert w.previous() == Window(_utc(2026, 3, 2, 5), _utc(2026, 3, 2, 8))
    assert Window.last(7, _utc(2026, 3, 9, 12, 5)).start == _utc(2026, 3, 2, 13)
    with pytest.raises(ValueError):
        Window(_utc(2026, 3, 2, 8, 30), _utc(2026, 3, 2, 9))
    assert Days(date(2026, 3, 8), date(2026, 3, 14)).previous() == Days(
        date(2026, 3, 1), date(2026, 3, 7)
    )


def test_median_interpolates_inside_the_bin() -> None:
    assert median_from_histogram([0, 4]) == pytest.approx(7.5)
    assert median_from_histogram([1, 1, 0, 2]) == pytest.approx(10.0)
    assert median_from_histogram([1, 0, 0, 3]) == pytest.approx(15 + 5 / 3)
    assert median_from_histogram([0, 0]) is None


def test_lift_list_pages_newest_first_without_gaps(database_url: str) -> None:
    start = _utc(2026, 3, 2, 6)
    # three lifts share each bottom time: the event id breaks the tie
    events = [
        lift(start + timedelta(minutes=i // 3), "rounded" if i % 4 == 0 else "hinge")
        for i in range(120)
    ]
    seed(database_url, events)
    store = open_store(database_url)
    with store.engine.connect() as conn:
        seen, cursor, pages = [], None, 0
        while True:
            page = list_lifts(conn, LiftQuery(site="s1"), limit=50, cursor=cursor)
            seen += page.lifts
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        rounded = list_lifts(
            conn,
            LiftQuery(posture="rounded", start=start, end=start + timedelta(minutes=10)),
            limit=100,
        )
        none = list_lifts(conn, LiftQuery(team="blue"))
    store.close()
    assert pages == 3
    assert len(seen) == 120
    assert len({x.event_id for x in seen}) == 120
    keys = [(x.bottom, x.event_id) for x in seen]
    assert keys == sorted(keys, reverse=True)
    # minutes 0..9 hold lifts 0..29; every fourth is rounded
    assert {x.posture for x in rounded.lifts} == {"rounded"}
    assert len(rounded.lifts) == len([i for i in range(30) if i % 4 == 0])
    assert rounded.next_cursor is None
    assert none.lifts == []
    assert not hasattr(seen[0], "track_id")


def test_a_foreign_cursor_is_refused() -> None:
    for bad in ("nonsense", "", "bm9wZQ"):
        with pytest.raises(CursorError):
            decode_cursor(bad)


def test_camera_health_counts_gaps_and_recent_lifts(database_url: str) -> None:
    now = _utc(2026, 3, 2, 12)
    seed(
        database_url,
        [
            lift(now - timedelta(hours=2), camera="c1", seq=0),
            lift(now - timedelta(hours=2), camera="c1", seq=1),
            lift(now - timedelta(hours=30), camera="c1", seq=4),
            lift(now - timedelta(hours=1), camera="c2", seq=0),
        ],
    )
    store = open_store(database_url)
    with store.engine.connect() as conn:
        cams = {c.id: c for c in camera_health(conn, now)}
    store.close()
    assert set(cams) == {"c1", "c2", "c3"}
    assert (cams["c1"].possibly_lost, cams["c1"].lifts_24h) == (2, 2)
    assert (cams["c2"].possibly_lost, cams["c2"].lifts_24h) == (0, 1)
    assert cams["c3"].state == "unknown"
    assert cams["c1"].team == "red"


def test_long_windows_from_the_daily_roll_up_equal_counting_the_lifts(database_url: str) -> None:
    """Whole days come from lift_daily, the partial hours at both ends from lift_hourly:
    the sums must be exactly what counting the lifts in the window gives."""
    import random

    rng = random.Random(5)
    postures = ("hinge", "rounded", "unscorable")
    events = [
        lift(
            _utc(2026, 3, 1) + timedelta(minutes=rng.randrange(0, 5 * 24 * 60)),
            rng.choice(postures),  # type: ignore[arg-type]
            flex=rng.uniform(20, 100),
            camera=rng.choice(["c1", "c2", "c3"]),
        )
        for _ in range(400)
    ]
    seed(database_url, events)
    window = Window(_utc(2026, 3, 1, 7), _utc(2026, 3, 4, 17))  # partial first and last day
    inside = [e for e in events if window.start <= e.bottom < window.end]
    got = {g.team: g for g in _summary(database_url, ("team",), window)}
    for team, cameras in (("red", {"c1", "c2"}), ("blue", {"c3"})):
        mine = [e for e in inside if e.camera in cameras]
        g = got[team]
        assert (g.lifts, g.hinge, g.rounded, g.unscorable) == (
            len(mine),
            sum(e.posture == "hinge" for e in mine),
            sum(e.posture == "rounded" for e in mine),
            sum(e.posture == "unscorable" for e in mine),
        )
        hours = {e.bottom.replace(minute=0, second=0, microsecond=0) for e in mine}
        assert g.active_hours == len(hours)
        flexes = sorted(e.metrics.trunk_flexion_max_deg or 0.0 for e in mine)
        assert g.median_trunk_flexion_deg == pytest.approx(flexes[len(flexes) // 2], abs=5.0)
