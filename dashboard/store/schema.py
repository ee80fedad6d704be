"""The database tables, one `MetaData` for SQLite and PostgreSQL alike (Alembic migrates it).

Times are stored as naive UTC (`UTCDateTime` converts at the boundary) so both databases
compare and index them the same way. ``lift_hourly`` is a roll-up kept in step with
``lifts`` in the same transaction (with ``lift_daily``, the same per UTC day): team and
zone summaries over months read thousands of rows instead of millions of lifts. Trunk
flexion is rolled up as a 5° histogram so a median can still be read from it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
)

FLEX_BIN_DEG = 5
FLEX_BINS = 36
"""Trunk-flexion histogram: 0–180° in 5° bins (values past 180° land in the last)."""
FLEX_COLUMNS = [f"flex_{i:02d}" for i in range(FLEX_BINS)]
ROLLUP_COUNTS = ("lifts", "hinge", "rounded", "unscorable", "flex_n", *FLEX_COLUMNS)
"""The counters both roll-ups keep."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        if value.tzinfo is not timezone.utc:
            value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

sites = Table(
    "sites",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(100)),
    Column("timezone", String(64), nullable=False, default="UTC"),
)

zones = Table(
    "zones",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", String(100)),
)

teams = Table(
    "teams",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", String(100)),
)

shifts = Table(
    "shifts",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("start", String(5), nullable=False),
    Column("end", String(5), nullable=False),
)

cameras = Table(
    "cameras",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("zone", String(64), nullable=False, default="unassigned"),
    Column("team", String(64), nullable=False, default="unassigned"),
    Column("name", String(100)),
    Column("listed", Boolean, nullable=False, default=False),
    Column("state", String(16), nullable=False, default="unknown"),
    Column("state_since", UTCDateTime),
    Column("last_seen", UTCDateTime),
    Column("last_lift", UTCDateTime),
    Column("agent_version", String(64)),
    Column("model", String(64)),
    Column("seq_min", Integer),
    Column("seq_max", Integer),
    Column("seq_count", Integer, nullable=False, default=0),
    Column("stats", Text),
    Column("stats_at", UTCDateTime),
)

lifts = Table(
    "lifts",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("site", String(64), nullable=False),
    Column("camera", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("team", String(64), nullable=False),
    Column("shift", String(64), nullable=False, default=""),
    Column("day", Date, nullable=False),
    Column("track_id", String(32), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("bottom", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("posture", String(16), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("reason", String(200)),
    Column("view", String(16), nullable=False),
    Column("trunk_flexion_deg", Float),
    Column("trunk_flexion_max_deg", Float),
    Column("hip_angle_deg", Float),
    Column("knee_angle_deg", Float),
    Column("hip_shift", Float),
    Column("neck_drop_deg", Float),
    Column("chord_ratio", Float),
    Column("back_curvature", Float),
    Column("spine_flexion_deg", Float),
    Column("duration_s", Float),
    Column("reba_trunk", SmallInteger),
    Column("model", String(64), nullable=False),
    Column("model_sha256", String(64), nullable=False),
    Column("agent_version", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Index(None, "bottom"),
    Index(None, "site", "bottom"),
    Index(None, "site", "camera", "bottom"),
    Index(None, "site", "team", "bottom"),
    Index(None, "site", "zone", "bottom"),
)


def _rollup_table(name: str, period: Column[Any]) -> Table:
    """A roll-up: lift counters per site, camera, zone, team, shift, site day and ``period``."""
    return Table(
        name,
        metadata,
        Column("site", String(64), primary_key=True),
        Column("camera", String(64), primary_key=True),
        Column("zone", String(64), primary_key=True),
        Column("team", String(64), primary_key=True),
        Column("shift", String(64), primary_key=True),
        Column("day", Date, primary_key=True),
        period,
        *(Column(c, Integer, nullable=False, default=0) for c in ROLLUP_COUNTS),
        Index(None, period.name),
        Index(None, "site", period.name),
    )


lift_hourly = _rollup_table("lift_hourly", Column("hour", UTCDateTime, primary_key=True))

lift_daily = _rollup_table("lift_daily", Column("utc_day", Date, primary_key=True))
"""The hourly roll-up again per UTC day: a month is 30 rows per camera and shift, so a
30-day summary reads whole days here and only the partial hours at its ends hourly."""

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index(None, "expires_at"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "key_hash", "at"),
    Index(None, "at"),
)
"""Failed logins of the last minute, for the rate limit every web process shares. The key
is a hash of (user name, client address): people type passwords into the name field."""

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used", UTCDateTime),
    Column("revoked", Boolean, nullable=False, default=False),
)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("count", Integer),
    Column("window_min", Float),
    Column("ratio_pct", Float),
    Column("min_scored", Integer),
    Column("cooldown_min", Float, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(64)),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("site", String(64), nullable=False),
    Column("scope_kind", String(16), nullable=False),
    Column("scope_key", String(200), nullable=False),
    Column("camera", String(64)),
    Column("zone", String(64)),
    Column("team", String(64)),
    Column("shift", String(64)),
    Column("day", Date),
    Column("since", UTCDateTime, nullable=False),
    Column("fired_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
    Column("value", Float),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    Column("acknowledged_by", String(64)),
    Column("acknowledged_at", UTCDateTime),
    Column("resolved_by", String(64)),
    Column("resolved_at", UTCDateTime),
    Index(None, "fired_at"),
    Index(None, "status", "fired_at"),
    Index(None, "site", "fired_at"),
)

alert_cooldowns = Table(
    "alert_cooldowns",
    metadata,
    Column("rule_id", String(64), primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("scope_key", String(200), primary_key=True),
    Column("alert_id", Integer),
    Column("until", UTCDateTime, nullable=False),
)
"""One row per (rule, scope) that ever fired: claiming it is what makes one worker, and
only one, raise the alert of a window when several ingest workers evaluate at once."""

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("last_error", String(500)),
    Index(None, "channel", "status", "next_at"),
    Index(None, "alert_id", "channel", unique=True),
)
"""The delivery queue: ``next_at`` is both the retry time and the lease of a claimed row."""
