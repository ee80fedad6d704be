"""Camera health from the agents' retained status and periodic stats messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, select

from dashboard.store import schema
from dashboard.store.sql import greatest, upsert
from edge.events import AgentStats, AgentStatus


def record_status(conn: Connection, status: AgentStatus, received_at: datetime) -> None:
    """A newer status wins; a retained message older than what we know changes nothing."""
    table = schema.cameras
    stmt = upsert(conn, table).values(
        site=status.site,
        id=status.camera,
        state=status.state,
        state_since=status.since,
        last_seen=received_at,
        agent_version=status.agent_version,
        model=status.model,
    )
    newer = (table.c.state_since.is_(None)) | (table.c.state_since <= stmt.excluded.state_since)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site", "id"],
        set_={
            "state": case((newer, stmt.excluded.state), else_=table.c.state),
            "state_since": case((newer, stmt.excluded.state_since), else_=table.c.state_since),
            "agent_version": stmt.excluded.agent_version,
            "model": stmt.excluded.model,
            "last_seen": greatest(conn, table.c.last_seen, stmt.excluded.last_seen),
        },
    )
    conn.execute(stmt)


def record_stats(conn: Connection, stats: AgentStats, received_at: datetime) -> None:
    table = schema.cameras
    stmt = upsert(conn, table).values(
        site=stats.site,
        id=stats.camera,
        stats=stats.model_dump_json(),
        stats_at=stats.at,
        last_seen=received_at,
    )
    newer = (table.c.stats_at.is_(None)) | (table.c.stats_at <= stmt.excluded.stats_at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site", "id"],
        set_={
            "stats": case((newer, stmt.excluded.stats), else_=table.c.stats),
            "stats_at": case((newer, stmt.excluded.stats_at), else_=table.c.stats_at),
            "last_seen": greatest(conn, table.c.last_seen, stmt.excluded.last_seen),
        },
    )
    conn.execute(stmt)


def possibly_lost(row: Any) -> int:
    """Events missing from a camera's ``seq`` range (a gap that later fills stops counting).

    A reset sequence (an agent whose outbox was wiped) can overlap old numbers; that reads
    as fewer gaps, never as negative."""
    if row.seq_min is None:
        return 0
    return max(0, int(row.seq_max) - int(row.seq_min) + 1 - int(row.seq_count))


def list_cameras(conn: Connection, site: str | None = None) -> list[Any]:
    q = select(schema.cameras).order_by(schema.cameras.c.site, schema.cameras.c.id)
    if site is not None:
        q = q.where(schema.cameras.c.site == site)
    return list(conn.execute(q).all())
