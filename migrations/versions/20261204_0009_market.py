"""the market beyond list prices: node, network and software of offers and requests

Offers gain `cards_per_node`, `interconnect`, `network`, `network_gbps` and
`software` (a JSON list of stacks and versions) with `software_stacks`, the
stacks alone as ",cann,cuda," so that "any of these stacks" is a LIKE on every
database. Compute requests gain the matching constraints and `rank_by`.

The catalog gains figures for comparing across models, seeded from
migrations/seed/performance.py: published FP16/INT8/bandwidth figures where known,
and for every model a vendor-figure `perf_index` (BF16 TFLOPS ÷ the A100's), said
so in `perf_source`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.seed.accelerators import ACCELERATORS
from migrations.seed.performance import FIGURES, perf_index, perf_source

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accelerators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fp16_tflops", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("int8_tops", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("memory_bandwidth_gbps", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("perf_index", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("perf_source", sa.Text(), nullable=True))
    accelerators = sa.table(
        "accelerators",
        sa.column("id", sa.String),
        sa.column("fp16_tflops", sa.Float),
        sa.column("int8_tops", sa.Float),
        sa.column("memory_bandwidth_gbps", sa.Float),
        sa.column("perf_index", sa.JSON),
        sa.column("perf_source", sa.Text),
    )
    for seed in ACCELERATORS:
        index = perf_index(seed["bf16_tflops"])
        figures = FIGURES.get(seed["id"], {})
        op.execute(
            accelerators.update()
            .where(accelerators.c.id == seed["id"])
            .values(
                fp16_tflops=figures.get("fp16_tflops"),
                int8_tops=figures.get("int8_tops"),
                memory_bandwidth_gbps=figures.get("memory_bandwidth_gbps"),
                perf_index={"training": index, "inference": index},
                perf_source=perf_source(seed["bf16_tflops"]),
            )
        )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cards_per_node", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("interconnect", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("network", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("network_gbps", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("software", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "software_stacks",
                sa.String(length=100),
                server_default=sa.text("''"),
                nullable=False,
            )
        )
    with op.batch_alter_table("compute_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accept_bids", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("bids_close_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("rank_by", sa.String(length=32), server_default="net_amount", nullable=False)
        )
        batch_op.add_column(sa.Column("min_cards_per_node", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("interconnect", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("network", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("software_stacks", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )

    op.create_table(
        "bids",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("offer_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("price_per_card_hour", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], name=op.f("fk_bids_offer_id_offers")),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_bids_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["compute_requests.id"],
            name=op.f("fk_bids_request_id_compute_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bids")),
    )
    op.create_index(
        "ix_bids_request", "bids", ["request_id", "status", "valid_until"], unique=False
    )
    op.create_index(
        "ux_bids_live",
        "bids",
        ["request_id", "offer_id"],
        unique=True,
        postgresql_where=sa.text("status = 'live'"),
        sqlite_where=sa.text("status = 'live'"),
    )


def downgrade() -> None:
    op.drop_index("ux_bids_live", table_name="bids")
    op.drop_index("ix_bids_request", table_name="bids")
    op.drop_table("bids")
    # ALTER TABLE … DROP COLUMN on both databases (SQLite 3.35+), not batch mode: batch
    # mode rebuilds a table, and on SQLite a rebuilt accelerators or offers table is
    # dropped first, which the foreign keys of a market's rows refuse.
    for table, columns in (
        (
            "compute_requests",
            (
                "software_stacks",
                "network",
                "interconnect",
                "min_cards_per_node",
                "rank_by",
                "bids_close_at",
                "accept_bids",
            ),
        ),
        (
            "offers",
            (
                "software_stacks",
                "software",
                "network_gbps",
                "network",
                "interconnect",
                "cards_per_node",
            ),
        ),
        (
            "accelerators",
            ("perf_source", "perf_index", "memory_bandwidth_gbps", "int8_tops", "fp16_tflops"),
        ),
    ):
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
