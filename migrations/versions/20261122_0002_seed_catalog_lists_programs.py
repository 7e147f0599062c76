"""seed the accelerator catalog, the official lists and the subsidy programs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from migrations.seed.accelerators import ACCELERATORS
from migrations.seed.lists import PROVIDER_LISTS
from migrations.seed.programs import PROGRAMS

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _fen(amount: str | None) -> int | None:
    return None if amount is None else int(Decimal(amount) * 100)


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _table(name: str, *columns: sa.Column) -> sa.Table:
    return sa.table(name, *columns)


def upgrade() -> None:
    accelerators = _table(
        "accelerators",
        sa.column("id", sa.String),
        sa.column("vendor", sa.String),
        sa.column("model", sa.String),
        sa.column("domestic", sa.Boolean),
        sa.column("memory_gb", sa.Integer),
        sa.column("bf16_tflops", sa.Float),
        sa.column("source", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("version", sa.Integer),
    )
    op.bulk_insert(
        accelerators,
        [
            {
                **{k: a[k] for k in ("id", "vendor", "model", "domestic", "memory_gb", "source")},
                "bf16_tflops": float(a["bf16_tflops"]),
                "created_at": NOW,
                "updated_at": NOW,
                "version": 1,
            }
            for a in ACCELERATORS
        ],
    )
    lists = _table(
        "provider_lists",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("source", sa.Text),
    )
    op.bulk_insert(lists, PROVIDER_LISTS)
    programs = _table(
        "subsidy_programs",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("voucher_type", sa.String),
        sa.column("level", sa.String),
        sa.column("status", sa.String),
        sa.column("effective_from", sa.Date),
        sa.column("effective_until", sa.Date),
        sa.column("enterprise_regions", sa.JSON),
        sa.column("provider_lists_any", sa.JSON),
        sa.column("purposes", sa.JSON),
        sa.column("base", sa.String),
        sa.column("rates", sa.JSON),
        sa.column("enterprise_annual_cap", sa.BigInteger),
        sa.column("cap_relaxable_for_foundation_model_enterprises", sa.Boolean),
        sa.column("annual_budget", sa.BigInteger),
        sa.column("source", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("version", sa.Integer),
    )
    op.bulk_insert(
        programs,
        [
            {
                **{
                    k: p[k]
                    for k in (
                        "id",
                        "name",
                        "voucher_type",
                        "level",
                        "status",
                        "enterprise_regions",
                        "provider_lists_any",
                        "purposes",
                        "base",
                        "rates",
                        "cap_relaxable_for_foundation_model_enterprises",
                        "source",
                    )
                },
                "effective_from": _date(p["effective_from"]),
                "effective_until": _date(p["effective_until"]),
                "enterprise_annual_cap": _fen(p["enterprise_annual_cap"]),
                "annual_budget": _fen(p["annual_budget"]),
                "created_at": NOW,
                "updated_at": NOW,
                "version": 1,
            }
            for p in PROGRAMS
        ],
    )


def downgrade() -> None:
    ids = [p["id"] for p in PROGRAMS]
    op.execute(
        sa.text("DELETE FROM subsidy_programs WHERE id IN :ids").bindparams(
            sa.bindparam("ids", ids, expanding=True)
        )
    )
    ids = [lst["id"] for lst in PROVIDER_LISTS]
    op.execute(
        sa.text("DELETE FROM provider_lists WHERE id IN :ids").bindparams(
            sa.bindparam("ids", ids, expanding=True)
        )
    )
    ids = [a["id"] for a in ACCELERATORS]
    op.execute(
        sa.text("DELETE FROM accelerators WHERE id IN :ids").bindparams(
            sa.bindparam("ids", ids, expanding=True)
        )
    )
