"""Baseline: the tables as `create_all` made them before migrations (up to 67d70da)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "partners_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("partner_audit", schema=None) as batch_op:
        batch_op.create_index("ix_partner_audit_partner_at", ["partner", "at"], unique=False)

    op.create_table(
        "partners",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("municipalities", sa.JSON(), nullable=False),
        sa.Column("rate", sa.Double(), nullable=False),
        sa.Column("burst", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "partner_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner"],
            ["partners.name"],
        ),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("partner_keys", schema=None) as batch_op:
        batch_op.create_index("ix_partner_keys_partner", ["partner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("partner_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_partner_keys_partner")

    op.drop_table("partner_keys")
    op.drop_table("partners")
    with op.batch_alter_table("partner_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_partner_audit_partner_at")

    op.drop_table("partner_audit")
