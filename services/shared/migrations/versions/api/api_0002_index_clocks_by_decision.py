"""The year report's index: clocks by `decided_at`, with what the report groups them by."""

from __future__ import annotations

from alembic import op

revision = "api_0002"
down_revision = "api_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clocks_decided",
            ["decided_at", "municipality", "norm", "channel", "status"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("clocks", schema=None) as batch_op:
        batch_op.drop_index("ix_clocks_decided")
