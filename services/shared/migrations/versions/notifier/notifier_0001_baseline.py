"""Baseline: the tables as `create_all` made them before migrations (up to 67d70da)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notifier_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_alerts",
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("norm", sa.String(length=64), nullable=False),
        sa.Column("clock", sa.Integer(), nullable=False),
        sa.Column("alertname", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clock_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generator_url", sa.String(length=512), nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "norm", "clock", "alertname"),
    )
    with op.batch_alter_table("notifier_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifier_alerts_clock_at"), ["clock_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifier_alerts_ends_at"), ["ends_at"], unique=False)

    op.create_table(
        "notifier_applied",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("clock_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifier_applied", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifier_applied_clock_at"), ["clock_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notifier_applied", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifier_applied_clock_at"))

    op.drop_table("notifier_applied")
    with op.batch_alter_table("notifier_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifier_alerts_ends_at"))
        batch_op.drop_index(batch_op.f("ix_notifier_alerts_clock_at"))

    op.drop_table("notifier_alerts")
