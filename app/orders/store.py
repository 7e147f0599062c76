"""Every statement of placing an order, built once, and its rows by name.

Building a statement costs more than running it, and a built one keeps its cache key
(and `db.CompiledStatements` its SQL for the driver). Everything is read as plain
columns, which cost a fraction of ORM objects to load, into named values (`rows.Columns`):
no caller reads a position. Adding a column the order path reads is one column beside
its field here (or in `matching.store` for the enterprise).

Lock order (docs/decisions.md): the enterprise, with the quote (`lock_quote`); then the
offers, by id (`lock_offers`); what the locks guard is read after both (`usage`); the
budgets' usage rows last, at the commit (the ledger entries' trigger).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, and_, bindparam, literal, null, or_, select, union_all
from sqlalchemy import cast as sql_cast

from app.core.db import Statement, Statements, Transaction, insert_rows
from app.core.rows import Columns, Layout, whole
from app.ledger import service as ledger
from app.matching import engine
from app.matching import store as matching_store
from app.models import (
    CapRelaxation,
    ComputeRequest,
    Enterprise,
    Listing,
    Offer,
    Order,
    OrderPart,
    Provider,
    Quote,
)
from app.models.status import OfferStatus, ProviderStatus

ORDERS = cast(Table, Order.__table__)
PARTS = cast(Table, OrderPart.__table__)


# ------------------------------------------------------------------ the quote, locked


class QuoteRow(NamedTuple):
    id: str
    enterprise_id: str
    expires_at: datetime
    match: dict[str, Any]  # the pinned match, as MatchOut's JSON
    ordered_as: str | None  # the order already placed on it, if any


QUOTE = Columns.of(
    QuoteRow,
    [Quote.id, Quote.enterprise_id, Quote.expires_at, Quote.match, Order.id],
    prefix="quote_",
)
# Pricing takes the request as an object, made of its columns (read only: no session
# tracks it).
REQUEST = Columns.entity(ComputeRequest, prefix="request_")

# The quote with any order already placed on it, its request, and its enterprise,
# locked (its caps are what the lock guards), with what pricing needs of it (a row per
# cap relaxation).
_QUOTE = (
    select(*QUOTE.columns, *REQUEST.columns, *matching_store.ENTERPRISE.columns)
    .join(ComputeRequest, ComputeRequest.id == Quote.request_id)
    .join(Enterprise, Enterprise.id == Quote.enterprise_id)
    .outerjoin(CapRelaxation, CapRelaxation.enterprise_id == Enterprise.id)
    .outerjoin(Order, Order.quote_id == Quote.id)
    .where(Quote.id == bindparam("quote_id"))
    .with_for_update(of=Enterprise)
)
_QUOTE_LAYOUT = Layout(_QUOTE, QUOTE, REQUEST, matching_store.ENTERPRISE)


@dataclass(frozen=True)
class LockedQuote:
    quote: QuoteRow
    request: ComputeRequest
    enterprise: matching_store.EnterpriseRead | None


async def lock_quote(tx: Statements, quote_id: str) -> LockedQuote | None:
    """The quote, its request and its enterprise, the enterprise locked (None: no such
    quote)."""
    found = await tx.fetch(_QUOTE, {"quote_id": quote_id})
    if not found:
        return None
    first = found[0]
    return LockedQuote(
        quote=_QUOTE_LAYOUT.read(first, QUOTE),
        request=_QUOTE_LAYOUT.read(first, REQUEST),
        enterprise=matching_store.enterprise_read(
            [_QUOTE_LAYOUT.read(row, matching_store.ENTERPRISE) for row in found]
        ),
    )


# ------------------------------------------------------------------ the offers, locked


class OfferRow(NamedTuple):
    """A locked offer with its provider's status, one row per list of its provider on
    the contract day (or one with none)."""

    id: str
    provider_id: str
    status: str
    cards_total: int
    provider_status: str
    list_id: str | None


_LOCK_OFFERS = (
    select(
        Offer.id,
        Offer.provider_id,
        Offer.status,
        Offer.cards_total,
        Provider.status.label("provider_status"),
        Listing.list_id,
    )
    .join(Provider, Provider.id == Offer.provider_id)
    .outerjoin(
        Listing,
        and_(
            Listing.provider_id == Offer.provider_id,
            Listing.ended_at.is_(None),
            Listing.since <= bindparam("day"),
            or_(Listing.until.is_(None), Listing.until >= bindparam("day")),
        ),
    )
    .where(Offer.id.in_(bindparam("offer_ids", expanding=True)))
    .order_by(Offer.id)
    .with_for_update(of=Offer)  # the listings are read, not locked
)
whole(_LOCK_OFFERS, OfferRow)


@dataclass(frozen=True)
class LockedOffers:
    cards_on_sale: dict[str, int]  # offer id -> cards in all, of those on sale
    provider_lists: dict[str, frozenset[str]]  # the offers' providers' lists that day


async def lock_offers(tx: Statements, offer_ids: Sequence[str], day: date) -> LockedOffers:
    """Lock the offers (by id: a fixed order, after the enterprise)."""
    cards_on_sale: dict[str, int] = {}
    lists: dict[str, set[str]] = {}
    for row in map(
        OfferRow._make, await tx.fetch(_LOCK_OFFERS, {"offer_ids": offer_ids, "day": day})
    ):
        if row.status == OfferStatus.active and row.provider_status == ProviderStatus.listed:
            cards_on_sale[row.id] = row.cards_total
        provider = lists.setdefault(row.provider_id, set())
        if row.list_id is not None:
            provider.add(row.list_id)
    return LockedOffers(
        cards_on_sale, {provider_id: frozenset(names) for provider_id, names in lists.items()}
    )


# ------------------------------------------------------------------ what the locks guard


class UsageRow(NamedTuple):
    """A row of `_USAGE`: a ledger sum of the enterprise or a budget's usage
    (`ledger.BalanceRow`), or an offer's hold (`whose` "hold", `program_id` the offer)."""

    whose: str
    program_id: str
    kind: str | None
    amount: Decimal | None
    start: datetime | None
    end: datetime | None
    cards: int | None


# One read once both are locked: the enterprise's balances, the budgets' usage
# (`ledger.MINE`, `ledger.BUDGETS`) and the offers' holds over the window. The first
# branch's columns give the result its names and types (and PostgreSQL the union's).
_USAGE = union_all(
    ledger.MINE.add_columns(
        sql_cast(null(), PARTS.c.start.type).label("start"),
        sql_cast(null(), PARTS.c.end.type).label("end"),
        sql_cast(null(), PARTS.c.cards.type).label("cards"),
    ),
    ledger.BUDGETS.add_columns(null(), null(), null()),
    select(
        literal("hold"),
        OrderPart.offer_id,
        null(),
        null(),
        OrderPart.start,
        OrderPart.end,
        OrderPart.cards,
    ).where(*matching_store.HOLDS_OVER_WINDOW),
)
whole(_USAGE, UsageRow)


@dataclass(frozen=True)
class Usage:
    holds: dict[str, list[engine.Hold]]  # offer id -> its holds over the window
    enterprise: dict[str, ledger.Balance]  # program id -> the enterprise's balance
    budgets: dict[str, ledger.Balance]  # program id -> the budget's usage


async def usage(
    tx: Statements,
    *,
    enterprise_id: str,
    year: int,
    program_ids: Sequence[str],
    offer_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> Usage:
    """The offers' holds over `start`..`end`, the enterprise's balances and the budgets'
    usage (of `program_ids`) in `year`: one read."""
    rows = [
        UsageRow._make(row)
        for row in await tx.fetch(
            _USAGE,
            {
                "enterprise_id": enterprise_id,
                "year": year,
                "program_ids": program_ids,
                "offer_ids": offer_ids,
                "start": start,
                "end": end,
            },
        )
    ]
    holds: dict[str, list[engine.Hold]] = {}
    for row in rows:
        if row.whose == "hold":
            assert row.start is not None
            assert row.end is not None
            assert row.cards is not None
            holds.setdefault(row.program_id, []).append(
                engine.Hold(start=row.start, end=row.end, cards=row.cards)
            )
    mine, budgets = ledger.split_balances(rows)
    return Usage(holds, mine, budgets)


# ------------------------------------------------------------------ the order's rows


async def write(
    tx: Transaction,
    rows: Sequence[tuple[Table, Sequence[dict[str, Any]]]],
    *,
    also: Statement | None = None,
) -> None:
    """The order, its parts, the audit entry and the ledger reservations, and `also`
    a statement of the caller's (the idempotency answer): one round trip on PostgreSQL
    (`insert_rows`)."""
    await insert_rows(tx, rows, also=also)
