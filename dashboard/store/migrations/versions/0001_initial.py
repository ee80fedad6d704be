"""initial schema: organisation, cameras, lifts, hourly roll-up, users

Revision ID: 0001
Revises:
Create Date: 2026-11-24 02:48:37.025896
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_since", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.Column("last_seen", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.Column("last_lift", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.Column("agent_version", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("seq_min", sa.Integer(), nullable=True),
        sa.Column("seq_max", sa.Integer(), nullable=True),
        sa.Column("seq_count", sa.Integer(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=True),
        sa.Column("stats_at", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("site", "id", name=op.f("pk_cameras")),
    )
    op.create_table(
        "lift_hourly",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("shift", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("lifts", sa.Integer(), nullable=False),
        sa.Column("hinge", sa.Integer(), nullable=False),
        sa.Column("rounded", sa.Integer(), nullable=False),
        sa.Column("unscorable", sa.Integer(), nullable=False),
        sa.Column("flex_n", sa.Integer(), nullable=False),
        sa.Column("flex_00", sa.Integer(), nullable=False),
        sa.Column("flex_01", sa.Integer(), nullable=False),
        sa.Column("flex_02", sa.Integer(), nullable=False),
        sa.Column("flex_03", sa.Integer(), nullable=False),
        sa.Column("flex_04", sa.Integer(), nullable=False),
        sa.Column("flex_05", sa.Integer(), nullable=False),
        sa.Column("flex_06", sa.Integer(), nullable=False),
        sa.Column("flex_07", sa.Integer(), nullable=False),
        sa.Column("flex_08", sa.Integer(), nullable=False),
        sa.Column("flex_09", sa.Integer(), nullable=False),
        sa.Column("flex_10", sa.Integer(), nullable=False),
        sa.Column("flex_11", sa.Integer(), nullable=False),
        sa.Column("flex_12", sa.Integer(), nullable=False),
        sa.Column("flex_13", sa.Integer(), nullable=False),
        sa.Column("flex_14", sa.Integer(), nullable=False),
        sa.Column("flex_15", sa.Integer(), nullable=False),
        sa.Column("flex_16", sa.Integer(), nullable=False),
        sa.Column("flex_17", sa.Integer(), nullable=False),
        sa.Column("flex_18", sa.Integer(), nullable=False),
        sa.Column("flex_19", sa.Integer(), nullable=False),
        sa.Column("flex_20", sa.Integer(), nullable=False),
        sa.Column("flex_21", sa.Integer(), nullable=False),
        sa.Column("flex_22", sa.Integer(), nullable=False),
        sa.Column("flex_23", sa.Integer(), nullable=False),
        sa.Column("flex_24", sa.Integer(), nullable=False),
        sa.Column("flex_25", sa.Integer(), nullable=False),
        sa.Column("flex_26", sa.Integer(), nullable=False),
        sa.Column("flex_27", sa.Integer(), nullable=False),
        sa.Column("flex_28", sa.Integer(), nullable=False),
        sa.Column("flex_29", sa.Integer(), nullable=False),
        sa.Column("flex_30", sa.Integer(), nullable=False),
        sa.Column("flex_31", sa.Integer(), nullable=False),
        sa.Column("flex_32", sa.Integer(), nullable=False),
        sa.Column("flex_33", sa.Integer(), nullable=False),
        sa.Column("flex_34", sa.Integer(), nullable=False),
        sa.Column("flex_35", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "site", "camera", "zone", "team", "shift", "day", "hour", name=op.f("pk_lift_hourly")
        ),
    )
    with op.batch_alter_table("lift_hourly", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lift_hourly_hour"), ["hour"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_lift_hourly_site_hour"), ["site", "hour"], unique=False
        )

    op.create_table(
        "lifts",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("shift", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("track_id", sa.String(length=32), nullable=False),
        sa.Column("start", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("bottom", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("end", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("posture", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("view", sa.String(length=16), nullable=False),
        sa.Column("trunk_flexion_deg", sa.Float(), nullable=True),
        sa.Column("trunk_flexion_max_deg", sa.Float(), nullable=True),
        sa.Column("hip_angle_deg", sa.Float(), nullable=True),
        sa.Column("knee_angle_deg", sa.Float(), nullable=True),
        sa.Column("hip_shift", sa.Float(), nullable=True),
        sa.Column("neck_drop_deg", sa.Float(), nullable=True),
        sa.Column("chord_ratio", sa.Float(), nullable=True),
        sa.Column("back_curvature", sa.Float(), nullable=True),
        sa.Column("spine_flexion_deg", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("reba_trunk", sa.SmallInteger(), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("agent_version", sa.String(length=64), nullable=False),
        sa.Column("received_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_lifts")),
    )
    with op.batch_alter_table("lifts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lifts_bottom"), ["bottom"], unique=False)
        batch_op.create_index(batch_op.f("ix_lifts_site_bottom"), ["site", "bottom"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_lifts_site_camera_bottom"), ["site", "camera", "bottom"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lifts_site_team_bottom"), ["site", "team", "bottom"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lifts_site_zone_bottom"), ["site", "zone", "bottom"], unique=False
        )

    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "shifts",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("end", sa.String(length=5), nullable=False),
        sa.PrimaryKeyConstraint("site", "name", name=op.f("pk_shifts")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_table(
        "teams",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("site", "id", name=op.f("pk_teams")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "zones",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("site", "id", name=op.f("pk_zones")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("last_used", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("expires_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_sessions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_expires_at"))

    op.drop_table("web_sessions")
    op.drop_table("api_tokens")
    op.drop_table("zones")
    op.drop_table("users")
    op.drop_table("teams")
    op.drop_table("sites")
    op.drop_table("shifts")
    op.drop_table("meta")
    with op.batch_alter_table("lifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lifts_site_zone_bottom"))
        batch_op.drop_index(batch_op.f("ix_lifts_site_team_bottom"))
        batch_op.drop_index(batch_op.f("ix_lifts_site_camera_bottom"))
        batch_op.drop_index(batch_op.f("ix_lifts_site_bottom"))
        batch_op.drop_index(batch_op.f("ix_lifts_bottom"))

    op.drop_table("lifts")
    with op.batch_alter_table("lift_hourly", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lift_hourly_site_hour"))
        batch_op.drop_index(batch_op.f("ix_lift_hourly_hour"))

    op.drop_table("lift_hourly")
    op.drop_table("cameras")
