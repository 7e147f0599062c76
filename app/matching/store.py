"""The statements matching runs on every request, built once, and their rows by name.

Building a statement costs more than running it (SQLAlchemy's expression
construction), and a built one keeps its cache key. What pricing needs of the
enterprise is read as plain columns (an ORM object with its relaxations loaded
cost several times the statement), a row per cap relaxation, with the programs'
state (the program cache's check); an order reads the same columns with its quote
(`ENTERPRISE`, `enterprise_read`).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.rows import Columns, Layout
from app.matching import engine
from app.models import CapRelaxation, Enterprise, Listing, OrderPart
from app.subsidies import service as subsidy_service
from app.subsidies.rules import EnterpriseFacts


class EnterpriseRow(NamedTuple):
    """What pricing needs of an enterprise: one row per cap relaxation (or one with
    none), each with the programs' state."""

    id: str
    region_code: str
    is_foundation_model_enterprise: bool
    relaxed_program_id: str | None
    relaxed_annual_cap: Decimal | None
    programs_count: int
    programs_versions: int
    programs_updated_at: datetime | None


ENTERPRISE = Columns.of(
    EnterpriseRow,
    [
        Enterprise.id,
        Enterprise.region_code,
        Enterprise.is_foundation_model_enterprise,
        CapRelaxation.program_id,
        CapRelaxation.annual_cap,
        *subsidy_service.PROGRAMS_STATE_COLUMNS,
    ],
    prefix="enterprise_",
)


@dataclass(frozen=True)
class EnterpriseRead:
    """An enterprise as pricing reads it, folded from its `EnterpriseRow`s."""

    id: str
    # What the subsidy rules know of it; whether a request relies on a filed model is
    # the request's, set by the caller (`matching.service.context_without_usage`).
    facts: EnterpriseFacts
    # The programs table's state as read with it (`subsidy_service.load_programs`).
    programs_state: tuple[Any, ...]


def enterprise_read(rows: Sequence[EnterpriseRow]) -> EnterpriseRead | None:
    """The enterprise of its rows (None: no rows, no such enterprise)."""
    if not rows:
        return None
    first = rows[0]
    return EnterpriseRead(
        id=first.id,
        facts=EnterpriseFacts(
            region_code=first.region_code,
            is_foundation_model_enterprise=first.is_foundation_model_enterprise,
            relaxed_caps={
                row.relaxed_program_id: row.relaxed_annual_cap
                for row in rows
                if row.relaxed_program_id and row.relaxed_annual_cap is not None
            },
        ),
        programs_state=(first.programs_count, first.programs_versions, first.programs_updated_at),
    )


_ENTERPRISE = (
    select(*ENTERPRISE.columns)
    .outerjoin(CapRelaxation, CapRelaxation.enterprise_id == Enterprise.id)
    .where(Enterprise.id == bindparam("enterprise_id"))
)
_ENTERPRISE_LAYOUT = Layout(_ENTERPRISE, ENTERPRISE)


async def enterprise(session: AsyncSession, enterprise_id: str) -> EnterpriseRead | None:
    """The enterprise as pricing reads it, with the programs' state (one statement)."""
    # Core statement on the session's connection: the ORM layers cost more than it.
    connection = await session.connection()
    result = await connection.execute(_ENTERPRISE, {"enterprise_id": enterprise_id})
    return enterprise_read([_ENTERPRISE_LAYOUT.read(row, ENTERPRISE) for row in result.all()])


# The holds of the offers `offer_ids` that overlap the window `start`..`end`: what
# matching and placing an order both count against an offer's cards.
HOLDS_OVER_WINDOW = (
    OrderPart.offer_id.in_(bindparam("offer_ids", expanding=True)),
    OrderPart.holding.is_(True),
    OrderPart.end > bindparam("start"),
    OrderPart.start < bindparam("end"),
)
_HOLDS = select(OrderPart.offer_id, OrderPart.start, OrderPart.end, OrderPart.cards).where(
    *HOLDS_OVER_WINDOW
)
_LISTINGS = select(Listing.provider_id, Listing.list_id).where(
    Listing.provider_id.in_(bindparam("provider_ids", expanding=True)),
    Listing.ended_at.is_(None),
    Listing.since <= bindparam("day"),
    or_(Listing.until.is_(None), Listing.until >= bindparam("day")),
)


async def holds(
    session: AsyncSession, offer_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[engine.Hold]]:
    """offer id -> its holds overlapping `start`..`end`."""
    found: dict[str, list[engine.Hold]] = defaultdict(list)
    result = await session.execute(
        _HOLDS, {"offer_ids": list(offer_ids), "start": start, "end": end}
    )
    for row in result:
        found[row.offer_id].append(engine.Hold(start=row.start, end=row.end, cards=row.cards))
    return found


async def provider_lists(
    session: AsyncSession, provider_ids: Sequence[str], day: date
) -> dict[str, frozenset[str]]:
    """provider id -> the lists it is on, on `day` (every provider asked, listed or not)."""
    lists: dict[str, set[str]] = {pid: set() for pid in provider_ids}
    result = await session.execute(_LISTINGS, {"provider_ids": list(provider_ids), "day": day})
    for row in result:
        lists[row.provider_id].add(row.list_id)
    return {pid: frozenset(names) for pid, names in lists.items()}
