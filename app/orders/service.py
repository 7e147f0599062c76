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

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.bids import service as bid_service
from app.config import Settings
from app.core import audit
from app.core.db import Database, Statement, Transaction, row_values, transient
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.middleware import PendingAnswer
from app.core.money import ZERO
from app.core.security import Principal
from app.core.timeutil import today_shanghai, utcnow
from app.ledger import service as ledger
from app.matching import service as matching
from app.matching.schemas import MatchOut
from app.models import (
    ClaimPart,
    ComputeRequest,
    Enterprise,
    LedgerEntry,
    Order,
    OrderPart,
    Quote,
    VoucherClaim,
)
from app.models.status import OrderStatus
from app.orders import placement, store
from app.orders.errors import QuoteUsed, SubsidyChanged
from app.orders.schemas import QuoteCreate
from app.requests import service as request_service
from app.subsidies.rules import PartReservation, settle

log = logging.getLogger("computematch.orders")


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


# Rendering a placed order's answer (its body and headers), the endpoint's.
Render = Callable[[Order], tuple[bytes, dict[str, str]]]

RETRIES = 3
# PostgreSQL deadlock (40P01) or serialization failure (40001): the order is retried.
RETRIED_SQLSTATES = ("40P01", "40001")


async def place(
    db: Database,
    principal: Principal,
    quote_id: str,
    *,
    render: Render,
    answer: PendingAnswer | None = None,
) -> tuple[Order, bytes, dict[str, str]]:
    """Place an order on a quote in a transaction of its own, retried (bounded) on a
    deadlock or serialization failure; the database's refusals as the order's
    conflicts. With `answer` (an Idempotency-Key's claimed record), the rendered
    answer is stored in the same statement as the order's rows: the record and the
    order commit or vanish together. The order, its body and headers."""
    for attempt in range(1, RETRIES + 1):
        try:
            # No session: nothing here needs a unit of work (`Database.transaction`).
            async with db.transaction() as tx:
                placement = await check_order(tx, principal, quote_id)
                order = placement.order
                body, headers = render(order)
                also = answer.statement(201, headers, body) if answer is not None else None
                await write_order(tx, placement, also=also)
            break
        except IntegrityError as exc:
            if ledger.overspends_budget(exc):
                # Another order took the budget's last room since this one read it.
                raise SubsidyChanged(
                    "the budget of the quoted program no longer covers the quoted "
                    "subsidy; take a new quote"
                ) from None
            # One order per quote is a unique key: of two orders racing on one quote,
            # both past the check, the second fails at its write (on PostgreSQL, once
            # the first commits).
            raise QuoteUsed(f"quote {quote_id} was already ordered") from None
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
            if code not in RETRIED_SQLSTATES or attempt == RETRIES:
                raise
            log.warning("order placement retried after %s (attempt %d)", code, attempt)
            await asyncio.sleep(0.01 * attempt)
    if answer is not None:
        answer.committed = True  # the middleware has nothing left to write
    log_placed(order)
    return order, body, headers


async def check_order(tx: Transaction, principal: Principal, quote_id: str) -> Placement:
    """Lock and re-check what a quote pinned; write nothing yet (`write_order`)."""
    if principal.role == "provider":
        raise Forbidden("orders are placed by enterprises")
    # The quote, its request, any order already placed on it and its enterprise, locked,
    # in one read; the quote and the request answer 404 to whom may not see them.
    locked = await store.lock_quote(tx, quote_id)
    if locked is None or not (
        principal.is_operator or principal.enterprise_id == locked.quote.enterprise_id
    ):
        raise NotFound(f"quote {quote_id} does not exist")
    request = locked.request
    # A quote's enterprise is its request's: seen the one, seen the other.
    if not request_service.can_see(principal, request):
        raise NotFound(f"compute request {request.id} does not exist")
    match = MatchOut.model_validate(locked.quote.match)
    refused = placement.admission(
        quote_id=quote_id,
        expires_at=locked.quote.expires_at,
        ordered_as=locked.quote.ordered_as,
        request_id=request.id,
        request_status=request.status,
        start=match.start,
        now=utcnow(),
    )
    if refused is not None:
        raise refused
    parts = placement.quoted_parts(match)
    contract_date = today_shanghai()
    ctx = await matching.context_without_usage(
        tx, request, locked.enterprise, contract_date=contract_date
    )
    # Lock the offers (by id: a fixed order, after the enterprise); then read what the
    # locks guard, as it is now: the offers' holds, the enterprise's balances; and the
    # budgets' usage, which the database guards again where it is spent (the ledger's
    # trigger), so that no program is locked for long.
    offer_ids = sorted({p.offer_id for p in parts})
    offers = await store.lock_offers(tx, offer_ids, contract_date)
    if any(p.offer_id not in offers.cards_on_sale for p in parts):
        usage = store.Usage({}, {}, {})  # refused below, before anything else is read
    else:
        usage = await store.usage(
            tx,
            enterprise_id=request.enterprise_id,
            year=contract_date.year,
            program_ids=ctx.budgeted,
            offer_ids=offer_ids,
            start=match.start,
            end=match.end,
        )
    # Related parties (claims.md): read only when an open program excludes them.
    await matching.load_related_parties(tx, ctx, set(offers.provider_lists))
    decided = placement.decide(
        match,
        parts,
        placement.Market(
            cards_on_sale=offers.cards_on_sale,
            holds=usage.holds,
            # The lists came with the offers; a provider of a part is always one of theirs.
            provider_lists=offers.provider_lists,
            enterprise_used=ledger.used(usage.enterprise),
            budget_used=ledger.used(usage.budgets),
            related_parties=ctx.related_parties,
        ),
        placement.Pricing(
            programs=ctx.programs,
            enterprise=ctx.enterprise,
            purpose=request.purpose,
            contract_date=contract_date,
            index_medians=ctx.index_medians,
        ),
    )
    if not isinstance(decided, placement.Accepted):
        raise decided
    return _placement_rows(principal, quote_id, request, match, decided, contract_date.year)


def _placement_rows(
    principal: Principal,
    quote_id: str,
    request: ComputeRequest,
    match: MatchOut,
    decided: placement.Accepted,
    year: int,
) -> Placement:
    """The order, its holds, the audit entry and the ledger reservations, as rows.
    Written with plain INSERTs (no unit of work to run); the answer is built from the
    same values."""
    now = utcnow()
    order = transient(
        Order,
        id=new_id("ord"),
        quote_id=quote_id,
        request_id=request.id,
        enterprise_id=request.enterprise_id,
        status=OrderStatus.reserved,
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
    for decided_part in decided.parts:
        part, result = decided_part.part, decided_part.subsidy
        row = transient(
            OrderPart,
            id=new_id("opt"),
            order_id=order.id,
            offer_id=part.offer_id,
            provider_id=part.provider_id,
            cards=part.cards,
            start=match.start,
            end=match.end,
            holding=True,
            price_per_card_hour=part.price_per_card_hour,
            gross_amount=part.gross_amount,
            program_id=result.program_id,
            rate=str(result.rate),
            base=result.base,
            capped_by=result.capped_by,
            subsidy_amount=result.amount,
            net_amount=part.gross_amount - result.amount,
            executed_amount=None,
            settled_subsidy=None,
            considered=[
                {"program_id": c.program_id, "eligible": c.eligible, "reason": c.reason}
                for c in result.considered
            ],
        )
        rows.append(row)
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
            (store.ORDERS, [row_values(order)]),
            (store.PARTS, [row_values(row) for row in rows]),
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
    await store.write(tx, placement.rows, also=also)
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
    if order.status != OrderStatus.reserved:
        raise Conflict(
            f"order {order.id} is {order.status}; only a reserved order can be cancelled"
        )
    year = await ledger.reservation_year(session, order.id)
    released = []
    for part in order.parts:
        part.holding = False
        released += _entries(order, part, year, ("release", part.subsidy_amount))
    await ledger.append(session, released)
    order.status = OrderStatus.cancelled
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
    if order.status != OrderStatus.reserved:
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
    order.status = OrderStatus.completed
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
