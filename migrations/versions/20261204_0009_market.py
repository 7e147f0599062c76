"""the market beyond list prices: node, network and software of offers and requests

Offers gain `cards_per_node`, `interconnect`, `network`, `network_gbps` and
`software` (a JSON list of stacks and versions) with `software_stacks`, the
stacks alone as ",cann,cuda," so that "any of these stacks" is a LIKE on every
database. Compute requests gain the matching constraints.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
        batch_op.add_column(sa.Column("min_cards_per_node", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("interconnect", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("network", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("software_stacks", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("compute_requests", schema=None) as batch_op:
        batch_op.drop_column("software_stacks")
        batch_op.drop_column("network")
        batch_op.drop_column("interconnect")
        batch_op.drop_column("min_cards_per_node")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_column("software_stacks")
        batch_op.drop_column("network_gbps")
        batch_op.drop_column("network")
        batch_op.drop_column("interconnect")
        batch_op.drop_column("cards_per_node")
