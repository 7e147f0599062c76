"""the price index: programs' max_price_ratio, what was bought per day, and indexes

Programs gain `max_price_ratio` (market.md, "The price index"): null, or a ratio
such as "1.50" kept as a string like the rates. Seeded programs keep null.

`prices_paid_daily` holds the card-hours bought per Asia/Shanghai day (of the
order's placement), accelerator, region (the offer's) and price, and the orders: the price index sums
a month of these rows instead of reading every order. A trigger on order_parts
keeps it: a part inserted holding its cards adds its card-hours, a part that
stops holding them (a cancelled order) takes them back. Each order counts once
per accelerator, on its first part of that accelerator (and so in that part's region) (the smallest id on
PostgreSQL, the first inserted on SQLite), whichever way it is counted back.
On PostgreSQL the trigger is deferred to the commit, as the budgets' is (0006),
so a row many orders share is locked only while the transaction commits.

The index's cache of active-offer medians checks the newest `offers.updated_at`
and `providers.updated_at` before each use: an index on each makes that check a
look-up rather than a scan. Orders are read by when they were placed (the
console's weeks and months): an index on `orders.created_at`. And an order's
parts by their order (the trigger, and every read of an order's parts): an index
on `order_parts.order_id`, which the foreign key alone does not give on
PostgreSQL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL_FUNCTION = """
CREATE FUNCTION prices_paid_follow_order_parts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign integer;
    acc varchar;
    region varchar;
    placed date;
    first_part varchar;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT NEW.holding THEN
            RETURN NULL;
        END IF;
        sign := 1;
    ELSIF OLD.holding = NEW.holding THEN
        RETURN NULL;
    ELSE
        sign := CASE WHEN NEW.holding THEN 1 ELSE -1 END;
    END IF;
    SELECT accelerator_id, region_code INTO acc, region FROM offers WHERE id = NEW.offer_id;
    SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date INTO placed
    FROM orders WHERE id = NEW.order_id;
    SELECT min(p.id) INTO first_part
    FROM order_parts p JOIN offers o ON o.id = p.offer_id
    WHERE p.order_id = NEW.order_id AND o.accelerator_id = acc;
    INSERT INTO prices_paid_daily AS daily
        (day, accelerator_id, region_code, price_per_card_hour, card_hours, orders)
    VALUES (
        placed,
        acc,
        region,
        NEW.price_per_card_hour,
        sign * NEW.cards * round(extract(epoch FROM NEW."end" - NEW.start) / 3600)::bigint,
        CASE WHEN NEW.id = first_part THEN sign ELSE 0 END
    )
    ON CONFLICT (day, accelerator_id, region_code, price_per_card_hour) DO UPDATE
    SET card_hours = daily.card_hours + EXCLUDED.card_hours,
        orders = daily.orders + EXCLUDED.orders;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = """
CREATE CONSTRAINT TRIGGER order_parts_move_prices_paid
AFTER INSERT OR UPDATE OF holding ON order_parts DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION prices_paid_follow_order_parts()
"""


def _sqlite_trigger(name: str, event: str, when: str, sign: str) -> str:
    # The order counts on its first part of the accelerator: no part of the same order
    # and accelerator was inserted before it (rowid order is insertion order).
    return f"""
CREATE TRIGGER {name} AFTER {event} ON order_parts WHEN {when}
BEGIN
    INSERT INTO prices_paid_daily
        (day, accelerator_id, region_code, price_per_card_hour, card_hours, orders)
    SELECT
        date(o.created_at, '+8 hours'),
        f.accelerator_id,
        f.region_code,
        NEW.price_per_card_hour,
        {sign} * NEW.cards
            * CAST(round((julianday(NEW."end") - julianday(NEW.start)) * 24) AS INTEGER),
        CASE WHEN EXISTS (
            SELECT 1 FROM order_parts p JOIN offers g ON g.id = p.offer_id
            WHERE p.order_id = NEW.order_id
              AND g.accelerator_id = f.accelerator_id
              AND p.rowid < NEW.rowid
        ) THEN 0 ELSE {sign} END
    FROM orders o, offers f
    WHERE o.id = NEW.order_id AND f.id = NEW.offer_id
    ON CONFLICT (day, accelerator_id, region_code, price_per_card_hour) DO UPDATE
    SET card_hours = card_hours + excluded.card_hours, orders = orders + excluded.orders;
END
"""


SQLITE_TRIGGERS = (
    _sqlite_trigger("order_parts_add_prices_paid", "INSERT", "NEW.holding", "1"),
    _sqlite_trigger(
        "order_parts_move_prices_paid",
        "UPDATE OF holding",
        "OLD.holding <> NEW.holding",
        "(CASE WHEN NEW.holding THEN 1 ELSE -1 END)",
    ),
)


def upgrade() -> None:
    # Not a batch (a copy of the table on SQLite): the ledger's trigger names it.
    op.add_column("subsidy_programs", sa.Column("max_price_ratio", sa.String(12), nullable=True))
    op.create_index("ix_offers_updated_at", "offers", ["updated_at"])
    op.create_index("ix_providers_updated_at", "providers", ["updated_at"])
    op.create_index("ix_orders_created_at", "orders", ["created_at", "id"])
    # An order's parts by their order: the trigger below looks for the order's other
    # parts, and every read of an order loads its parts.
    op.create_index("ix_order_parts_order", "order_parts", ["order_id"])
    op.create_table(
        "prices_paid_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("accelerator_id", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("price_per_card_hour", app.core.db.MoneyFen(), nullable=False),
        sa.Column("card_hours", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "accelerator_id", "region_code", "price_per_card_hour"),
    )
    # What is already held: the orders placed before this migration.
    op.execute(BACKFILL_SQLITE if op.get_bind().dialect.name == "sqlite" else BACKFILL_POSTGRESQL)
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    else:
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)


def _backfill(day: str, hours: str, first: str) -> str:
    return f"""
INSERT INTO prices_paid_daily
    (day, accelerator_id, region_code, price_per_card_hour, card_hours, orders)
SELECT {day}, f.accelerator_id, f.region_code, p.price_per_card_hour,
       sum(p.cards * {hours}),
       sum(CASE WHEN {first} THEN 1 ELSE 0 END)
FROM order_parts p
JOIN orders o ON o.id = p.order_id
JOIN offers f ON f.id = p.offer_id
WHERE p.holding
GROUP BY {day}, f.accelerator_id, f.region_code, p.price_per_card_hour
"""


_FIRST = """NOT EXISTS (
    SELECT 1 FROM order_parts q JOIN offers g ON g.id = q.offer_id
    WHERE q.order_id = p.order_id AND g.accelerator_id = f.accelerator_id AND q.{key} < p.{key}
)"""
BACKFILL_SQLITE = _backfill(
    "date(o.created_at, '+8 hours')",
    'CAST(round((julianday(p."end") - julianday(p.start)) * 24) AS INTEGER)',
    _FIRST.format(key="rowid"),
)
BACKFILL_POSTGRESQL = _backfill(
    "(o.created_at AT TIME ZONE 'Asia/Shanghai')::date",
    'round(extract(epoch FROM p."end" - p.start) / 3600)::bigint',
    _FIRST.format(key="id"),
)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER order_parts_move_prices_paid")
        op.execute("DROP TRIGGER order_parts_add_prices_paid")
    else:
        op.execute("DROP TRIGGER order_parts_move_prices_paid ON order_parts")
        op.execute("DROP FUNCTION prices_paid_follow_order_parts()")
    op.drop_table("prices_paid_daily")
    op.drop_index("ix_order_parts_order", table_name="order_parts")
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.drop_index("ix_providers_updated_at", table_name="providers")
    op.drop_index("ix_offers_updated_at", table_name="offers")
    op.drop_column("subsidy_programs", "max_price_ratio")
