"""lift_daily: the hourly roll-up per UTC day, back-filled from lift_hourly

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = ("site", "camera", "zone", "team", "shift", "day")
COUNTS = (
    "lifts",
    "hinge",
    "rounded",
    "unscorable",
    "flex_n",
    *(f"flex_{i:02d}" for i in range(36)),
)


def upgrade() -> None:
    op.create_table(
        "lift_daily",
        *(sa.Column(name, sa.String(length=64), nullable=False) for name in KEY[:-1]),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("utc_day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint(*KEY, "utc_day", name=op.f("pk_lift_daily")),
    )
    op.create_index(op.f("ix_lift_daily_utc_day"), "lift_daily", ["utc_day"])
    op.create_index(op.f("ix_lift_daily_site_utc_day"), "lift_daily", ["site", "utc_day"])
    columns = ", ".join(f'"{c}"' for c in (*KEY, "utc_day", *COUNTS))
    keys = ", ".join(f'"{c}"' for c in KEY)
    sums = ", ".join(f'SUM("{c}")' for c in COUNTS)
    op.execute(
        f"INSERT INTO lift_daily ({columns}) "
        f"SELECT {keys}, DATE(hour), {sums} FROM lift_hourly GROUP BY {keys}, DATE(hour)"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_lift_daily_site_utc_day"), table_name="lift_daily")
    op.drop_index(op.f("ix_lift_daily_utc_day"), table_name="lift_daily")
    op.drop_table("lift_daily")
