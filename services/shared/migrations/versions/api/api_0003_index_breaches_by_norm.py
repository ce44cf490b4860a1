"""Breaches by norm: `GET /v1/breaches?norm=` read every breach without it (0.7 s for a
norm's 119 among 125,000 breaches, in a review's synthetic two years)."""

from __future__ import annotations

from alembic import op

revision = "api_0003"
down_revision = "api_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outcomes_breaches_by_norm", ["kind", "norm", "decided_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index("ix_outcomes_breaches_by_norm")
