"""indexes for matching and voucher balances

Matching walks active offers of one hardware origin cheapest first
(status, domestic, price, id), skipping models the request does not accept
inside the index (accelerator_id last), and reads the holds of a page of
offers from an index that covers them (offer, holding, end, start, cards); the voucher
balances a match or an order reads are sums over the ledger, served from
covering indexes in the order they are grouped (year, program) and
(enterprise, year, program), and by creation time for the entries of the last
minutes (app.ledger.budgets). None of these reads the table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_offers_origin_price",
            ["status", "domestic", "price_per_card_hour", "id", "accelerator_id"],
            unique=False,
        )
    with op.batch_alter_table("order_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_order_parts_holds")
        batch_op.create_index(
            "ix_order_parts_holds",
            ["offer_id", "holding", "end", "start", "cards"],
            unique=False,
        )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_year_program", ["year", "program_id", "kind", "amount"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_enterprise_year",
            ["enterprise_id", "year", "program_id", "kind", "amount"],
            unique=False,
        )
        batch_op.create_index(
            "ix_ledger_recent",
            ["year", "created_at", "program_id", "kind", "amount"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_recent")
        batch_op.drop_index("ix_ledger_enterprise_year")
        batch_op.drop_index("ix_ledger_year_program")
    with op.batch_alter_table("order_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_order_parts_holds")
        batch_op.create_index("ix_order_parts_holds", ["offer_id", "holding", "end"], unique=False)
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index("ix_offers_origin_price")
