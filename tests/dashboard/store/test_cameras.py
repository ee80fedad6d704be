from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard.store import open_store
from dashboard.store.cameras import list_cameras, record_stats, record_status
from edge.events import AgentStats, AgentStatus

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _status(state: str, since: datetime) -> AgentStatus:
    return AgentStatus(
        site="s1",
        camera="c1",
        state=state,  # type: ignore[arg-type]
        since=since,
        agent_version="0.1.0",
        model="movenet_multipose",
    )


def test_newest_status_wins_even_when_an_old_retained_one_arrives_late(database_url: str) -> None:
    store = open_store(database_url)
    with store.engine.begin() as conn:
        record_status(conn, _status("online", T0 + timedelta(minutes=5)), T0)
        record_status(conn, _status("offline", T0), T0 + timedelta(minutes=6))
        (cam,) = list_cameras(conn)
    assert (cam.state, cam.state_since) == ("online", T0 + timedelta(minutes=5))
    assert cam.last_seen == T0 + timedelta(minutes=6)
    with store.engine.begin() as conn:
        record_status(conn, _status("offline", T0 + timedelta(minutes=9)), T0)
        (cam,) = list_cameras(conn)
    assert cam.state == "offline"


def test_stats_are_kept_with_their_time(database_url: str) -> None:
    store = open_store(database_url)
    stats = AgentStats(
        site="s1", camera="c1", at=T0, fps=9.8, inference_ms=31.0, outbox_depth=3,
        outbox_dropped=0, published=10, publish_failures=0, camera_reconnects=1,
        mqtt_reconnects=0, frames=600, lifts={"hinge": 4},
    )  # fmt: skip
    with store.engine.begin() as conn:
        record_stats(conn, stats, T0 + timedelta(seconds=1))
        record_stats(conn, stats.model_copy(update={"at": T0 - timedelta(minutes=1)}), T0)
        (cam,) = list_cameras(conn)
    assert AgentStats.model_validate_json(cam.stats) == stats
    assert cam.stats_at == T0 and cam.state == "unknown"
