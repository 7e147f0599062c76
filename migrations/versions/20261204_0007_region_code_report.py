"""report region codes that are not in the GB/T 2260 table; change nothing

The API now accepts only region codes of the GB/T 2260 county-level table the
service ships (app/core/data/gbt2260.csv), and program regions only as prefixes
of its codes. Rows written before may carry a code that does not exist (such as
330199, which no Hangzhou district has). Which code was meant only a person can
tell, so this migration rewrites nothing: it prints every such row (table, id,
field, code) to standard error, for the operator to correct through the API.
It changes no schema, and going down does nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.core.regions import TABLE_DATE, is_real_region_code, is_real_region_prefix

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _regions(value: Any) -> dict[str, list[str]]:
    # JSON columns come back decoded on PostgreSQL, as text on some SQLite builds.
    data = json.loads(value) if isinstance(value, str) else value
    return data if isinstance(data, dict) else {}


def bad_region_codes(connection: sa.Connection) -> list[tuple[str, str, str, str]]:
    """(table, id, field, code) of every stored code or program prefix not in the table."""
    found = []
    for table in ("providers", "enterprises", "offers"):
        rows = connection.execute(sa.text(f"SELECT id, region_code FROM {table} ORDER BY id"))
        found += [
            (table, row_id, "region_code", code)
            for row_id, code in rows
            if not is_real_region_code(code)
        ]
    programs = connection.execute(
        sa.text("SELECT id, enterprise_regions FROM subsidy_programs ORDER BY id")
    )
    for program_id, regions in programs:
        for side in ("include", "exclude"):
            found += [
                ("subsidy_programs", program_id, f"enterprise_regions.{side}", prefix)
                for prefix in _regions(regions).get(side, [])
                if not is_real_region_prefix(prefix)
            ]
    return found


def upgrade() -> None:
    found = bad_region_codes(op.get_bind())
    if not found:
        return
    lines = [
        f"{len(found)} stored region code(s) are not in the GB/T 2260 table of {TABLE_DATE}; "
        "left as they are: correct them through the API"
    ] + [f"  {table} {row_id} {field}: {code}" for table, row_id, field, code in found]
    for line in lines:
        print(line, file=sys.stderr)
    log.warning("\n".join(lines))


def downgrade() -> None:
    pass  # reported only; nothing to undo
