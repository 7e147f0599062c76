"""rate limit counters

Per-key (and, for keyless self-registration, per client IP) request counts in
fixed one-minute windows, shared by every worker process (app.core.ratelimit).
The window leads the primary key, so dropping old windows is a range delete.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.String(length=80), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("window_start", "principal", name=op.f("pk_rate_limit_counters")),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_counters")
