"""Quotes and orders: capacity and subsidy reserved together, in one transaction.

Placing an order locks, in a fixed order (the enterprise, with the quote; then
the offers by id), the rows whose state it reads to decide capacity and caps,
and reads that state after both: so two orders for the same cards or cap queue
up, and the second one sees the first one's holds and ledger entries. A budget
is guarded by the database where it is spent: the ledger's reservations move the
program's usage row, and a reservation that would take it past the budget is
refused (`ledger.BUDGET_CHECK`). On PostgreSQL that happens at the commit, so
the row that most orders share is locked only while a commit finishes in the
server. On SQLite the request's transaction already holds the database write
lock (BEGIN IMMEDIATE), which serialises the same way.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.bids import service as bid_service
from app.config import Settings
from app.core import audit
from app.core.db import Statement, Transaction, fetch, insert_rows, row_values, transient
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.money import ZERO
from app.core.security import Principal
from app.core.timeutil import today_shanghai, utcnow
from app.ledger import service as ledger
from app.matching import engine
from app.matching import service as matching
from app.matching.schemas import MatchOut
from app.models import (
    CapRelaxation,
    ClaimPart,
    ComputeRequest,
    Enterprise,
    LedgerEntry,
    Listing,
    Offer,
    Order,
    OrderPart,
    Provider,
    Quote,
    VoucherClaim,
)
from app.orders.schemas import QuoteCreate
from app.requests import service as request_service
from app.subsidies.rules import (
    Contract,
    PartReservation,
    Usage,
    evaluate,
    settle,
)

log = logging.getLogger("computematch.orders")


# The statements of placing an order, built once (building one costs more than running
# it, and a built one keeps its cache key).
_ORDERS = cast(Table, Order.__table__)
_PARTS = cast(Table, OrderPart.__table__)
# Plain columns, which cost a fraction of ORM objects to load; pricing takes the
# request as an object, made of its columns (`_REQUEST_FIELDS`). The quote comes with any
# order already placed on it, its request, and its enterprise, locked (its caps are
# what the lock guards), with what pricing needs of it (`matching.ENTERPRISE_COLUMNS`,
# a row per cap relaxation).
_REQUEST_FIELDS = [attr.key for attr in sa_inspect(ComputeRequest).column_attrs]
_QUOTE = (
    select(
        Quote.id,
        Quote.enterprise_id,
        Quote.expires_at,
        Quote.match,
        Order.id,
        *(getattr(ComputeRequest, key) for key in _REQUEST_FIELDS),
        *matching.ENTERPRISE_COLUMNS,
    )
    .join(ComputeRequest, ComputeRequest.id == Quote.request_id)
    .join(Enterprise, Enterprise.id == Quote.enterprise_id)
    .outerjoin(CapRelaxation, CapRelaxation.enterprise_id == Enterprise.id)
    .outerjoin(Order, Order.quote_id == Quote.id)
    .where(Quote.id == bindparam("quote_id"))
    .with_for_update(of=Enterprise)
)
_REQUEST_AT = 5  # where the request's columns start in a row of _QUOTE
_ENTERPRISE_AT = _REQUEST_AT + len(_REQUEST_FIELDS)  # and the enterprise's
# The offers locked, with their provider's status and its lists on the contract day
# (one row per list; the listings are read, not locked).
_LOCK_OFFERS = (
    select(
        Offer.id,
        Offer.provider_id,
        Offer.status,
        Offer.cards_total,
        Provider.status,
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
    .with_for_update(of=Offer)
)
# Once both are locked, in one read: the enterprise's balances, the budgets' usage
# (`ledger.MINE`, `ledger.BUDGETS`) and the offers' holds over the window, as rows of
# (whose, id, kind, amount, start, end, cards). The first branch's columns give the
# result its types (and PostgreSQL the union's).
_USAGE = union_all(
    ledger.MINE.add_columns(
        sql_cast(null(), _PARTS.c.start.type).label("start"),
        sql_cast(null(), _PARTS.c.end.type).label("end"),
        sql_cast(null(), _PARTS.c.cards.type).label("cards"),
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
    ).where(*matching.HOLDS_OVER_WINDOW),
)


class OrderConflict(Conflict):
    type = "order-conflict"
    title = "The order cannot be placed as quoted"


# --------------------------------------------------------------------------- quotes


async def create_quote(
    session: AsyncSession, principal: Principal, payload: QuoteCreate, settings: Settings
) -> Quote:
    if principal.role == "provider":
        raise Forbidden("quotes are taken by enterprises")
    request = await request_service.get_request_for(session, principal, payload.request_id)
    # One enterprise's quotes are counted one at a time, so concurrent posts cannot all
    # pass the cap (a row lock on PostgreSQL; SQLite writers take turns anyway). Only
    # this lock is held while matching, so no lock order with order placement can cycle.
    await session.execute(
        select(Enterprise.id).where(Enterprise.id == request.enterprise_id).with_for_update()
    )
    now = utcnow()
    open_quotes = await session.scalar(
        select(func.count())
        .select_from(Quote)
        .where(
            Quote.enterprise_id == request.enterprise_id,
            Quote.expires_at > now,
            ~Quote.id.in_(select(Order.quote_id)),
        )
    )
    if (open_quotes or 0) >= settings.max_open_quotes_per_enterprise:
        raise Conflict(
            f"this enterprise already holds {open_quotes} open quotes (limit "
            f"{settings.max_open_quotes_per_enterprise}); order or let some expire"
        )
    bid = None
    if payload.bid_id is not None:
        # A quote on a bid is priced at the bid; the subsidy is worked out on that price.
        found = await bid_service.live_bid(session, request.id, payload.bid_id)
        bid = (found.id, found.price_per_card_hour)
        parts = [(found.offer_id, request.cards)]
    elif payload.offer_id is not None:
        parts = [(payload.offer_id, request.cards)]
    else:
        parts = [(p.offer_id, p.cards) for p in payload.parts or []]
    ctx, match = await matching.match_for_offers(session, request, parts, bid)
    if request.max_net_budget is not None and match.net_amount > request.max_net_budget:
        raise Conflict(
            f"the net amount {match.net_amount} exceeds the request's max_net_budget "
            f"{request.max_net_budget}"
        )
    quote = Quote(
        id=new_id("quo"),
        enterprise_id=request.enterprise_id,
        request_id=request.id,
        expires_at=now + timedelta(seconds=settings.quote_ttl_seconds),
        match=match.model_dump(mode="json"),
        program_versions=ctx.program_versions,
        created_at=now,
    )
    session.add(quote)
    await session.flush()
    await audit.record(
        session,
        principal,
        "quote.created",
        "quote",
        quote.id,
        after={"request_id": request.id, "net_amount": str(match.net_amount)},
    )
    return quote


async def get_quote_for(session: AsyncSession, principal: Principal, quote_id: str) -> Quote:
    quote = await session.get(Quote, quote_id)
    if quote is None or not (
        principal.is_operator or principal.enterprise_id == quote.enterprise_id
    ):
        raise NotFound(f"quote {quote_id} does not exist")
    return quote


# --------------------------------------------------------------------------- orders


def _parts_of(match: MatchOut) -> list[dict[str, Any]]:
    """The contracts a pinned match consists of (one, or a split's parts)."""
    if match.parts:
        return [
            {
                "offer_id": p.offer_id,
                "provider_id": p.provider_id,
                "cards": p.cards,
                "price_per_card_hour": p.price_per_card_hour,
                "gross_amount": p.gross_amount,
                "subsidy": p.subsidy,
                "domestic": p.domestic,
            }
            for p in match.parts
        ]
    if match.offer_id is None or match.provider_id is None or match.price_per_card_hour is None:
        raise ValueError("a single-offer match names its offer, provider and price")
    return [
        {
            "offer_id": match.offer_id,
            "provider_id": match.provider_id,
            "cards": match.cards,
            "price_per_card_hour": match.price_per_card_hour,
            "gross_amount": match.gross_amount,
            "subsidy": match.subsidy,
            "domestic": match.domestic,
        }
    ]


def _entries(
    order: Order, part: OrderPart, year: int | None, *moves: tuple[str, Decimal]
) -> list[LedgerEntry]:
    """A part's voucher-ledger entries, one per (kind, amount); none for an amount of
    zero or a part without a program."""
    if part.program_id is None or year is None:
        return []
    return [
        ledger.entry(
            enterprise_id=order.enterprise_id,
            program_id=part.program_id,
            year=year,
            order_id=order.id,
            part_id=part.id,
            kind=kind,
            amount=amount,
        )
        for kind, amount in moves
        if amount > 0
    ]


async def _after_capacity_hold() -> None:
    """A seam for tests to inject a crash after the capacity hold and the ledger entries
    are written (on PostgreSQL in one statement), before the commit."""


@dataclass(frozen=True)
class Placement:
    """An order checked against capacity and subsidy as they are now, under the locks
    that keep them so until the commit, and the rows that will place it."""

    order: Order  # with its parts, as written
    rows: list[tuple[Table, list[dict[str, Any]]]]


async def check_order(tx: Transaction, principal: Principal, quote_id: str) -> Placement:
    """Lock and re-check what a quote pinned; write nothing yet (`write_order`)."""
    if principal.role == "provider":
        raise Forbidden("orders are placed by enterprises")
    # The quote, its request, any order already placed on it and its enterprise, locked,
    # in one read; the quote and the request answer 404 to whom may not see them.
    found = await fetch(tx, _QUOTE, {"quote_id": quote_id})
    if not found or not (principal.is_operator or principal.enterprise_id == found[0][1]):
        raise NotFound(f"quote {quote_id} does not exist")
    _, _, expires_at, quoted_match, taken = found[0][:_REQUEST_AT]
    # Read only, by pricing: an object no session tracks (there is none here).
    columns = found[0][_REQUEST_AT:_ENTERPRISE_AT]
    request = transient(ComputeRequest, **dict(zip(_REQUEST_FIELDS, columns, strict=True)))
    now = utcnow()
    if expires_at <= now:
        raise OrderConflict(
            f"quote {quote_id} expired at {expires_at.isoformat()}; take a new quote",
            reason="quote_expired",
        )
    if not request_service.can_see(principal, request):
        raise NotFound(f"compute request {request.id} does not exist")
    if request.status != "open":
        raise OrderConflict(
            f"compute request {request.id} is {request.status}", reason="request_closed"
        )
    if taken is not None:
        raise OrderConflict(f"quote {quote_id} was already ordered ({taken})", reason="quote_used")
    match = MatchOut.model_validate(quoted_match)
    if match.start < now:
        # Time already gone cannot be sold (domain.md, "Compute requests"); a comparison
        # with the clock read above, no query.
        raise OrderConflict(
            f"the quoted window started at {match.start.isoformat()}; take a new quote",
            reason="window_started",
        )
    parts = _parts_of(match)
    contract_date = today_shanghai()
    ctx = await matching.context_without_usage(
        tx,
        request,
        [row[_ENTERPRISE_AT:] for row in found],
        contract_date=contract_date,
    )

    # 1. Lock the offers (by id: a fixed order, after the enterprise).
    offer_ids = sorted({p["offer_id"] for p in parts})
    cards_of: dict[str, int] = {}  # the offers on sale, locked: id -> cards in all
    provider_lists: dict[str, set[str]] = {}
    for (
        offer_id,
        provider_id,
        status,
        cards_total,
        provider_status,
        list_id,
    ) in await fetch(tx, _LOCK_OFFERS, {"offer_ids": offer_ids, "day": contract_date}):
        if status == "active" and provider_status == "listed":
            cards_of[offer_id] = cards_total
        lists = provider_lists.setdefault(provider_id, set())
        if list_id is not None:
            lists.add(list_id)
    for part in parts:
        if part["offer_id"] not in cards_of:
            raise OrderConflict(
                f"offer {part['offer_id']} is no longer on sale", reason="offer_unavailable"
            )

    # 2. What the locks guard, as it is now (read after both): the offers' holds, the
    # enterprise's balances; and the budgets' usage, which the database guards again
    # where it is spent (below), so that no program is locked for long.
    holds, mine, budgets = await _usage(tx, offer_ids, match, ctx)
    for part in parts:
        offer_id = part["offer_id"]
        cards_total = cards_of[offer_id]
        peak = engine.peak_usage(holds.get(offer_id, []), match.start, match.end)
        if peak + part["cards"] > cards_total:
            raise OrderConflict(
                f"offer {offer_id} has {cards_total - peak} of {cards_total} cards "
                f"free over {match.start.isoformat()}..{match.end.isoformat()}; "
                f"the quote needs {part['cards']}",
                reason="capacity",
            )
    ctx.enterprise_used, ctx.budget_used = ledger.used(mine), ledger.used(budgets)
    # The lists came with the offers; a provider of a part is always one of theirs.
    ctx.provider_lists.update({pid: frozenset(lists) for pid, lists in provider_lists.items()})
    await matching.load_related_parties(tx, ctx, set(provider_lists))
    enterprise_used = dict(ctx.enterprise_used)
    budget_used = dict(ctx.budget_used)
    decided = []
    for part in parts:
        result = evaluate(
            ctx.programs,
            ctx.enterprise,
            ctx.provider_facts(part["provider_id"]),
            Contract(
                domestic=part["domestic"],
                purpose=request.purpose,
                gross_amount=part["gross_amount"],
                contract_date=ctx.contract_date,
            ),
            Usage(enterprise_used=enterprise_used, budget_used=budget_used),
        )
        quoted = part["subsidy"]
        if result.program_id != quoted.program_id or result.amount != quoted.amount:
            raise OrderConflict(
                f"the quoted subsidy no longer holds for offer {part['offer_id']}: quoted "
                f"{quoted.amount} from {quoted.program_id or 'no program'}, now "
                f"{result.amount} from {result.program_id or 'no program'}"
                + (f" (capped by {result.capped_by})" if result.capped_by else "")
                + "; take a new quote",
                reason="subsidy",
            )
        if result.program_id is not None:
            enterprise_used[result.program_id] = (
                enterprise_used.get(result.program_id, ZERO) + result.amount
            )
            budget_used[result.program_id] = (
                budget_used.get(result.program_id, ZERO) + result.amount
            )
        decided.append((part, result))

    # 3. Write the order, its holds and the ledger reservations.
    # Written with plain INSERTs (no unit of work to run); the answer is built from
    # the same values.
    now = utcnow()
    order = transient(
        Order,
        id=new_id("ord"),
        quote_id=quote_id,
        request_id=request.id,
        enterprise_id=request.enterprise_id,
        status="reserved",
        offer_id=match.offer_id,
        cards=match.cards,
        start=match.start,
        end=match.end,
        gross_amount=match.gross_amount,
        subsidy_amount=match.subsidy.amount,
        net_amount=match.net_amount,
        executed_amount=None,
        completed_at=None,
        cancelled_at=None,
        version=1,
        created_at=now,
        updated_at=now,
    )
    rows = []
    for part, result in decided:
        row = transient(
            OrderPart,
            id=new_id("opt"),
            order_id=order.id,
            offer_id=part["offer_id"],
            provider_id=part["provider_id"],
            cards=part["cards"],
            start=match.start,
            end=match.end,
            holding=True,
            price_per_card_hour=part["price_per_card_hour"],
            gross_amount=part["gross_amount"],
            program_id=result.program_id,
            rate=str(result.rate),
            base=result.base,
            capped_by=result.capped_by,
            subsidy_amount=result.amount,
            net_amount=part["gross_amount"] - result.amount,
            executed_amount=None,
            settled_subsidy=None,
            considered=[
                {"program_id": c.program_id, "eligible": c.eligible, "reason": c.reason}
                for c in result.considered
            ],
        )
        rows.append(row)
    # One order per quote is a unique key: of two orders racing on one quote, both past
    # the check above, the second fails here (on PostgreSQL, once the first commits),
    # and the endpoint answers 409 `quote_used`.
    year = ctx.contract_date.year
    entries = [
        e for row in rows for e in _entries(order, row, year, ("reserve", row.subsidy_amount))
    ]
    audit_row = audit.row(
        principal,
        "order.placed",
        "order",
        order.id,
        after={
            "quote_id": quote_id,
            "gross_amount": str(order.gross_amount),
            "subsidy_amount": str(order.subsidy_amount),
        },
    )
    # Everything the answer shows is in hand: no need to read the order back.
    set_committed_value(order, "parts", sorted(rows, key=lambda row: row.id))
    return Placement(
        order,
        [
            (_ORDERS, [row_values(order)]),
            (_PARTS, [row_values(row) for row in rows]),
            (audit.TABLE, [audit_row]),
            (ledger.TABLE, [row_values(e) for e in ledger.in_lock_order(entries)]),
        ],
    )


async def write_order(
    tx: Transaction, placement: Placement, *, also: Statement | None = None
) -> None:
    """Write a checked order: the order, its holds, the audit entry and the ledger
    reservations, and `also` a statement of the caller's (the idempotency answer), in
    one round trip on PostgreSQL (`insert_rows`)."""
    await insert_rows(tx, placement.rows, also=also)
    await _after_capacity_hold()


def log_placed(order: Order) -> None:
    """The business event of a placed order, once it is committed."""
    log.info(
        "order placed: %s quote=%s gross=%s subsidy=%s",
        order.id,
        order.quote_id,
        order.gross_amount,
        order.subsidy_amount,
        extra={
            "event": "order.placed",
            "order_id": order.id,
            "quote_id": order.quote_id,
            "compute_request_id": order.request_id,
            "enterprise_id": order.enterprise_id,
            "offer_ids": sorted({p.offer_id for p in order.parts}),
            "cards": order.cards,
            "gross_amount": str(order.gross_amount),
            "subsidy_amount": str(order.subsidy_amount),
            "net_amount": str(order.net_amount),
            "program_ids": sorted({p.program_id for p in order.parts if p.program_id}),
        },
    )


async def _usage(
    tx: Transaction, offer_ids: list[str], match: MatchOut, ctx: matching.MatchContext
) -> tuple[dict[str, list[engine.Hold]], dict[str, ledger.Balance], dict[str, ledger.Balance]]:
    """The offers' holds over the match's window (offer id -> holds), the enterprise's
    balances and the budgets' usage in the contract's year: one read (`_USAGE`)."""
    rows = await fetch(
        tx,
        _USAGE,
        {
            "enterprise_id": ctx.request.enterprise_id,
            "year": ctx.contract_date.year,
            "program_ids": ctx.budgeted,
            "offer_ids": offer_ids,
            "start": match.start,
            "end": match.end,
        },
    )
    holds: dict[str, list[engine.Hold]] = {}
    for whose, offer_id, _, _, start, end, cards in rows:
        if whose == "hold":
            holds.setdefault(offer_id, []).append(engine.Hold(start=start, end=end, cards=cards))
    mine, budgets = ledger.split_balances(rows)
    return holds, mine, budgets


async def load_order(session: AsyncSession, order_id: str) -> Order:
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.parts))
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    return order


def can_see(principal: Principal, order: Order) -> bool:
    if principal.is_operator or principal.enterprise_id == order.enterprise_id:
        return True
    return principal.provider_id is not None and any(
        p.provider_id == principal.provider_id for p in order.parts
    )


async def get_order_for(session: AsyncSession, principal: Principal, order_id: str) -> Order:
    order = await session.scalar(
        select(Order).where(Order.id == order_id).options(selectinload(Order.parts))
    )
    if order is None or not (
        can_see(principal, order) or await _reviewed_by(session, principal, order_id)
    ):
        raise NotFound(f"order {order_id} does not exist")
    return order


async def _reviewed_by(session: AsyncSession, principal: Principal, order_id: str) -> bool:
    """Whether a reviewer's programs have a claim covering this order (claims.md "Who")."""
    if not principal.is_reviewer or not principal.program_ids:
        return False
    found = await session.scalar(
        select(ClaimPart.id)
        .join(VoucherClaim, VoucherClaim.id == ClaimPart.claim_id)
        .where(
            ClaimPart.order_id == order_id,
            VoucherClaim.program_id.in_(principal.program_ids),
        )
        .limit(1)
    )
    return found is not None


async def _lock_order(session: AsyncSession, order: Order) -> Order:
    await session.execute(select(Order.id).where(Order.id == order.id).with_for_update())
    return await load_order(session, order.id)


async def cancel_order(session: AsyncSession, principal: Principal, order: Order) -> Order:
    if not (principal.is_operator or principal.enterprise_id == order.enterprise_id):
        raise Forbidden("only the enterprise that placed the order, or the operator, cancels it")
    order = await _lock_order(session, order)
    if order.status != "reserved":
        raise Conflict(
            f"order {order.id} is {order.status}; only a reserved order can be cancelled"
        )
    year = await ledger.reservation_year(session, order.id)
    released = []
    for part in order.parts:
        part.holding = False
        released += _entries(order, part, year, ("release", part.subsidy_amount))
    await ledger.append(session, released)
    order.status = "cancelled"
    order.cancelled_at = utcnow()
    order.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "order.cancelled",
        "order",
        order.id,
        before={"status": "reserved"},
        after={"status": "cancelled"},
    )
    log.info(
        "order cancelled: %s",
        order.id,
        extra={
            "event": "order.cancelled",
            "order_id": order.id,
            "enterprise_id": order.enterprise_id,
            "released_subsidy": str(order.subsidy_amount),
        },
    )
    return await load_order(session, order.id)


async def complete_order(
    session: AsyncSession, principal: Principal, order: Order, executed: Decimal
) -> Order:
    if not principal.is_operator and not (
        principal.provider_id is not None
        and all(p.provider_id == principal.provider_id for p in order.parts)
    ):
        raise Forbidden("only the order's provider, or the operator, completes it")
    if executed > order.gross_amount:
        raise Unprocessable.field(
            ["body", "executed_amount"],
            f"executed_amount {executed} is more than the order's gross amount "
            f"{order.gross_amount}",
        )
    order = await _lock_order(session, order)
    if order.status != "reserved":
        raise Conflict(f"order {order.id} is {order.status}; only a reserved order completes")
    year = await ledger.reservation_year(session, order.id)
    total_subsidy = ZERO
    entries = []
    # Every base alike (policies.md, settlement): the rate of what was spent.
    settlements = settle(
        [PartReservation(p.gross_amount, p.subsidy_amount, Decimal(p.rate)) for p in order.parts],
        executed,
    )
    for part, done in zip(order.parts, settlements, strict=True):
        part.executed_amount = done.executed_amount
        part.settled_subsidy = done.settled
        total_subsidy += done.settled
        entries += _entries(order, part, year, ("settle", done.settled), ("release", done.released))
    await ledger.append(session, entries)
    before = {"status": order.status, "subsidy_amount": str(order.subsidy_amount)}
    order.status = "completed"
    order.executed_amount = executed
    order.subsidy_amount = total_subsidy
    order.net_amount = executed - total_subsidy
    order.completed_at = utcnow()
    order.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "order.completed",
        "order",
        order.id,
        before=before,
        after={
            "status": "completed",
            "executed_amount": str(executed),
            "subsidy_amount": str(total_subsidy),
        },
    )
    log.info(
        "order completed: %s executed=%s subsidy=%s",
        order.id,
        executed,
        total_subsidy,
        extra={
            "event": "order.completed",
            "order_id": order.id,
            "enterprise_id": order.enterprise_id,
            "executed_amount": str(executed),
            "settled_subsidy": str(total_subsidy),
            "reserved_subsidy": before["subsidy_amount"],
        },
    )
    return await load_order(session, order.id)


def list_statement(principal: Principal) -> Any:
    stmt = select(Order).options(selectinload(Order.parts))
    if principal.is_operator:
        return stmt
    if principal.enterprise_id is not None:
        return stmt.where(Order.enterprise_id == principal.enterprise_id)
    return stmt.where(
        Order.id.in_(
            select(OrderPart.order_id).where(OrderPart.provider_id == principal.provider_id)
        )
    )
