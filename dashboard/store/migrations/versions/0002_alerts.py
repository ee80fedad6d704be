"""alerts: rules, alerts, cooldown claims, delivery queue

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:56:38.604625
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dashboard.store.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_cooldowns",
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("scope_key", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("until", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "site", "scope_key", name=op.f("pk_alert_cooldowns")),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("window_min", sa.Float(), nullable=True),
        sa.Column("ratio_pct", sa.Float(), nullable=True),
        sa.Column("min_scored", sa.Integer(), nullable=True),
        sa.Column("cooldown_min", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_key", sa.String(length=200), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=True),
        sa.Column("zone", sa.String(length=64), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("shift", sa.String(length=64), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("since", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("fired_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("last_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_at", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_fired_at"), ["fired_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alerts_site_fired_at"), ["site", "fired_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alerts_status_fired_at"), ["status", "fired_at"], unique=False
        )

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("created_at", dashboard.store.schema.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", dashboard.store.schema.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_alert_id_channel"), ["alert_id", "channel"], unique=True
        )
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_channel_status_next_at"),
            ["channel", "status", "next_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_channel_status_next_at"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_alert_id_channel"))

    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_status_fired_at"))
        batch_op.drop_index(batch_op.f("ix_alerts_site_fired_at"))
        batch_op.drop_index(batch_op.f("ix_alerts_fired_at"))

    op.drop_table("alerts")
    op.drop_table("alert_rules")
    op.drop_table("alert_cooldowns")
