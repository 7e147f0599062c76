"""budget usage per program and year

What each program's budget has used in a year (Σ reserve − Σ release), one row
per program and year, updated with the ledger entries that change it, so that
placing an order reads one row instead of summing the year's ledger
(app.ledger.service). Filled from the ledger as it stands. The index of the
ledger's recent entries, which served the per-process sums this replaces, goes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_usage",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["subsidy_programs.id"],
            name=op.f("fk_budget_usage_program_id_subsidy_programs"),
        ),
        sa.PrimaryKeyConstraint("program_id", "year", name=op.f("pk_budget_usage")),
    )
    op.execute(
        "INSERT INTO budget_usage (program_id, year, used) "
        "SELECT program_id, year, "
        "SUM(CASE kind WHEN 'reserve' THEN amount WHEN 'release' THEN -amount ELSE 0 END) "
        "FROM ledger_entries GROUP BY program_id, year"
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_recent")


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_recent",
            ["year", "created_at", "program_id", "kind", "amount"],
            unique=False,
        )
    op.drop_table("budget_usage")
