"""Storing lift events: idempotent on ``event_id``, roll-ups and camera counters in step.

One transaction per batch: the new rows, their hourly roll-up increments and each camera's
sequence counters commit together or not at all, so a crash between them cannot skew a
metric. Only rows that were really inserted (``ON CONFLICT DO NOTHING ... RETURNING``) add
to the roll-ups, which keeps redelivered events (at-least-once delivery) from counting
twice, also when two ingest workers race on PostgreSQL. Upserts run in key order so two
workers cannot deadlock on the same roll-up rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, Connection, Dialect, Table

from dashboard.org import Placement
from dashboard.store import schema
from dashboard.store.sql import greatest, least, upsert
from edge.events import LiftEvent


@dataclass(frozen=True)
class AddResult:
    stored: list[LiftEvent]
    duplicates: int


def lift_row(event: LiftEvent, place: Placement, received_at: datetime) -> dict[str, Any]:
    m = event.metrics
    return {
        "event_id": str(event.event_id),
        "seq": event.seq,
        "site": event.site,
        "camera": event.camera,
        "zone": place.zone,
        "team": place.team,
        "shift": place.shift or "",
        "day": place.day,
        "track_id": event.track_id,
        "start": event.start,
        "bottom": event.bottom,
        "end": event.end,
        "posture": event.posture,
        "confidence": event.confidence,
        "reason": event.reason,
        "view": event.view,
        "trunk_flexion_deg": m.trunk_flexion_deg,
        "trunk_flexion_max_deg": m.trunk_flexion_max_deg,
        "hip_angle_deg": m.hip_angle_deg,
        "knee_angle_deg": m.knee_angle_deg,
        "hip_shift": m.hip_shift,
        "neck_drop_deg": m.neck_drop_deg,
        "chord_ratio": m.chord_ratio,
        "back_curvature": m.back_curvature,
        "spine_flexion_deg": m.spine_flexion_deg,
        "duration_s": m.duration_s,
        "reba_trunk": m.reba_trunk,
        "model": event.model,
        "model_sha256": event.model_sha256,
        "agent_version": event.agent_version,
        "received_at": received_at,
    }


def trunk_flexion(row: dict[str, Any]) -> float | None:
    """The flexion the metrics report: the maximum over the lift, else the bottom value."""
    value = row["trunk_flexion_max_deg"]
    return row["trunk_flexion_deg"] if value is None else value


def flex_bin(deg: float) -> int:
    return min(max(int(deg // schema.FLEX_BIN_DEG), 0), schema.FLEX_BINS - 1)


_HOURLY_KEY = ("site", "camera", "zone", "team", "shift", "day", "hour")
_DAILY_KEY = ("site", "camera", "zone", "team", "shift", "day", "utc_day")


def _rollup(rows: Sequence[dict[str, Any]], daily: bool) -> list[dict[str, Any]]:
    """Counter increments per hourly (or daily) roll-up row, in key order."""
    names = _DAILY_KEY if daily else _HOURLY_KEY
    buckets: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        at = row["bottom"]
        last = at.date() if daily else at.replace(minute=0, second=0, microsecond=0)
        key = (row["site"], row["camera"], row["zone"], row["team"], row["shift"], row["day"], last)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = dict(zip(names, key, strict=True)) | dict.fromkeys(
                schema.ROLLUP_COUNTS, 0
            )
        b["lifts"] += 1
        b[row["posture"]] += 1
        flex = trunk_flexion(row)
        if flex is not None:
            b["flex_n"] += 1
            b[schema.FLEX_COLUMNS[flex_bin(flex)]] += 1
    return [buckets[k] for k in sorted(buckets)]


def _camera_counters(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["site"], row["camera"])
        c = per.get(key)
        if c is None:
            c = per[key] = {
                "site": row["site"],
                "id": row["camera"],
                "seq_min": row["seq"],
                "seq_max": row["seq"],
                "seq_count": 0,
                "last_lift": row["bottom"],
                "last_seen": row["received_at"],
            }
        c["seq_min"] = min(c["seq_min"], row["seq"])
        c["seq_max"] = max(c["seq_max"], row["seq"])
        c["seq_count"] += 1
        c["last_lift"] = max(c["last_lift"], row["bottom"])
    return [per[k] for k in sorted(per)]


def add_lifts(
    conn: Connection, items: Sequence[tuple[LiftEvent, Placement]], received_at: datetime
) -> AddResult:
    """Insert what is new among ``items``, in the caller's transaction."""
    rows: dict[str, dict[str, Any]] = {}
    events: dict[str, LiftEvent] = {}
    for event, place in items:
        key = str(event.event_id)
        if key not in rows:
            rows[key] = lift_row(event, place, received_at)
            events[key] = event
    if not rows:
        return AddResult([], len(items))
    inserted = _insert_new(conn, list(rows.values()))
    new_rows = [rows[k] for k in sorted(inserted)]
    if new_rows:
        _add_rollups(conn, schema.lift_hourly, _HOURLY_KEY, _rollup(new_rows, daily=False))
        _add_rollups(conn, schema.lift_daily, _DAILY_KEY, _rollup(new_rows, daily=True))
        _add_camera_counters(conn, _camera_counters(new_rows))
    return AddResult([events[k] for k in inserted], len(items) - len(inserted))


_INSERT_ROWS = 500
"""Rows per statement: 31 parameters each stays under SQLite's 32,766 and PostgreSQL's 65,535."""


def sqlite_utc_text(value: datetime) -> str:
    """The text SQLAlchemy's SQLite ``DateTime`` stores for `schema.UTCDateTime`
    (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC), built in C: its own bind processor formats
    through a dict and was a sixth of the ingest's time per lift."""
    if value.tzinfo is not timezone.utc:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
    return value.isoformat(" ", "microseconds")[:-6]  # less "+00:00"


def _binder(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(column.type, schema.UTCDateTime):
        return sqlite_utc_text
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> list[str]:
    """``INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING event_id``, many rows per
    statement, values converted by each column type's own bind processor for this dialect
    (so stored exactly as SQLAlchemy stores them: on SQLite a time is the text
    ``YYYY-MM-DD HH:MM:SS.ffffff`` that range queries compare) but sent through the driver:
    SQLAlchemy's per-value parameter handling was half the ingest's database time."""
    dialect = conn.dialect
    columns = list(schema.lifts.columns)
    names = [c.name for c in columns]
    convert = [(i, proc) for i, c in enumerate(columns) if (proc := _binder(c, dialect))]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO lifts ({', '.join(quote(n) for n in names)}) VALUES "
    tail = " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    one = "(" + ", ".join([mark] * len(names)) + ")"
    inserted: list[str] = []
    for k in range(0, len(rows), _INSERT_ROWS):
        chunk = rows[k : k + _INSERT_ROWS]
        params: list[Any] = []
        last: dict[int, tuple[Any, Any]] = {}
        for row in chunk:
            values = [row[n] for n in names]
            for i, proc in convert:
                value = values[i]
                seen = last.get(i)
                if seen is not None and seen[0] is value:  # received_at: one per batch
                    values[i] = seen[1]
                else:
                    values[i] = proc(value)
                    last[i] = (value, values[i])
            params.extend(values)
        sql = head + ", ".join([one] * len(chunk)) + tail
        inserted.extend(r[0] for r in conn.exec_driver_sql(sql, tuple(params)))
    return inserted


def _add_rollups(
    conn: Connection, table: Table, key: tuple[str, ...], buckets: list[dict[str, Any]]
) -> None:
    stmt = upsert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: table.c[name] + stmt.excluded[name] for name in schema.ROLLUP_COUNTS},
    )
    conn.execute(stmt, buckets)


def _add_camera_counters(conn: Connection, counters: list[dict[str, Any]]) -> None:
    table = schema.cameras
    stmt = upsert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site", "id"],
        set_={
            "seq_min": least(conn, table.c.seq_min, stmt.excluded.seq_min),
            "seq_max": greatest(conn, table.c.seq_max, stmt.excluded.seq_max),
            "seq_count": table.c.seq_count + stmt.excluded.seq_count,
            "last_lift": greatest(conn, table.c.last_lift, stmt.excluded.last_lift),
            "last_seen": greatest(conn, table.c.last_seen, stmt.excluded.last_seen),
        },
    )
    conn.execute(stmt, counters)
