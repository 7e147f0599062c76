"""the price index: programs' max_price_ratio, and indexes the index reads by

Programs gain `max_price_ratio` (market.md, "The price index"): null, or a ratio
such as "1.50" kept as a string like the rates. Seeded programs keep null.

The index's cache of active-offer medians checks the newest `offers.updated_at`
and `providers.updated_at` before each use: an index on each makes that check a
look-up rather than a scan. Orders are read by the day they were placed (the
index's last `days`, the console's weeks and months): an index on
`orders.created_at`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not a batch (a copy of the table on SQLite): the ledger's trigger names it.
    op.add_column("subsidy_programs", sa.Column("max_price_ratio", sa.String(12), nullable=True))
    op.create_index("ix_offers_updated_at", "offers", ["updated_at"])
    op.create_index("ix_providers_updated_at", "providers", ["updated_at"])
    op.create_index("ix_orders_created_at", "orders", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.drop_index("ix_providers_updated_at", table_name="providers")
    op.drop_index("ix_offers_updated_at", table_name="offers")
    op.drop_column("subsidy_programs", "max_price_ratio")
