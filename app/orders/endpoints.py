import asyncio
import logging
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.core.deps import SessionDep, SettingsDep, get_db
from app.core.errors import problems
from app.core.etag import IdempotencyKey, etag_for, set_etag, set_location
from app.core.middleware import pending_answer
from app.core.money import ZERO
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.ledger import service as ledger
from app.matching.schemas import MatchOut
from app.models import Order, OrderPart, Quote
from app.orders import service
from app.orders.schemas import (
    OrderComplete,
    OrderCreate,
    OrderOut,
    OrderPartOut,
    OrderStatus,
    QuoteCreate,
    QuoteOut,
)
from app.subsidies.schemas import SubsidyOut

router = APIRouter(route_class=ContractRoute, tags=["orders"])
log = logging.getLogger("computematch.orders")
RETRIES = 3


def quote_out(quote: Quote) -> QuoteOut:
    return QuoteOut(
        **MatchOut.model_validate(quote.match).model_dump(),
        id=quote.id,
        request_id=quote.request_id,
        enterprise_id=quote.enterprise_id,
        expires_at=quote.expires_at,
        created_at=quote.created_at,
    )


def _part_subsidy(part: OrderPart) -> SubsidyOut:
    return SubsidyOut.model_validate(
        {
            "program_id": part.program_id,
            "rate": Decimal(part.rate),
            "amount": part.settled_subsidy
            if part.settled_subsidy is not None
            else part.subsidy_amount,
            "base": part.base,
            "capped_by": part.capped_by,
        }
    )


def order_out(order: Order) -> OrderOut:
    parts = [
        OrderPartOut(
            id=p.id,
            offer_id=p.offer_id,
            provider_id=p.provider_id,
            cards=p.cards,
            start=p.start,
            end=p.end,
            price_per_card_hour=p.price_per_card_hour,
            gross_amount=p.gross_amount,
            subsidy=_part_subsidy(p),
            net_amount=(p.executed_amount if p.executed_amount is not None else p.gross_amount)
            - (p.settled_subsidy if p.settled_subsidy is not None else p.subsidy_amount),
            executed_amount=p.executed_amount,
            settled_subsidy=p.settled_subsidy,
        )
        for p in order.parts
    ]
    if len(parts) == 1:
        subsidy = parts[0].subsidy
    else:
        base = order.executed_amount if order.executed_amount is not None else order.gross_amount
        subsidy = SubsidyOut(
            program_id=None,
            rate=(order.subsidy_amount / base).quantize(Decimal("0.0001")) if base else ZERO,
            amount=order.subsidy_amount,
            base=None,
            capped_by=next((p.subsidy.capped_by for p in parts if p.subsidy.capped_by), None),
        )
    return OrderOut(
        id=order.id,
        quote_id=order.quote_id,
        request_id=order.request_id,
        enterprise_id=order.enterprise_id,
        status=OrderStatus(order.status),
        offer_id=order.offer_id,
        parts=parts,
        cards=order.cards,
        start=order.start,
        end=order.end,
        gross_amount=order.gross_amount,
        subsidy=subsidy,
        net_amount=order.net_amount,
        executed_amount=order.executed_amount,
        created_at=order.created_at,
        completed_at=order.completed_at,
        cancelled_at=order.cancelled_at,
    )


@router.post(
    "/v1/quotes",
    response_model=QuoteOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def create_quote(
    payload: QuoteCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> QuoteOut:
    """Pin one match (price, window, subsidy) for the enterprise until `expires_at`."""
    quote = quote_out(await service.create_quote(session, principal, payload, settings))
    set_location(response, f"/v1/quotes/{quote.id}")
    return quote


@router.get("/v1/quotes/{quote_id}", response_model=QuoteOut, responses=problems(401, 404))
async def get_quote(quote_id: str, session: SessionDep, principal: CurrentPrincipal) -> QuoteOut:
    """Read a quote."""
    return quote_out(await service.get_quote_for(session, principal, quote_id))


@router.get("/v1/orders", response_model=Page[OrderOut], responses=problems(401, 422))
async def list_orders(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    request_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[OrderOut]:
    """Orders: an enterprise's own, those on a provider's offers, or all for the operator."""
    stmt = service.list_statement(principal)
    if status_ is not None:
        stmt = stmt.where(Order.status == status_.value)
    if request_id:
        stmt = stmt.where(Order.request_id == request_id)
    rows, cursor = await paginate(session, stmt, Order.id, page)
    return Page(items=[order_out(o) for o in rows], next_cursor=cursor)


@router.post(
    "/v1/orders",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def place_order(
    payload: OrderCreate,
    principal: CurrentPrincipal,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Place an order on a quote: capacity and subsidy are reserved together, or neither (409)."""
    # With an Idempotency-Key, the answer is stored with the order's rows (one statement).
    answer = pending_answer(request.scope.get("state", {}))
    db = get_db(request)
    for attempt in range(1, RETRIES + 1):
        try:
            # A transaction of its own, no session: nothing here needs a unit of work.
            async with db.transaction() as tx:
                placement = await service.check_order(tx, principal, payload.quote_id)
                order = placement.order
                body = order_out(order).model_dump_json().encode()
                headers = {
                    "content-type": "application/json",
                    "etag": etag_for(order.id, order.version),
                    "location": f"/v1/orders/{order.id}",
                }
                also = answer.statement(201, headers, body) if answer is not None else None
                await service.write_order(tx, placement, also=also)
            break
        except IntegrityError as exc:
            if ledger.overspends_budget(exc):
                # Another order took the budget's last room since this one read it.
                raise service.OrderConflict(
                    "the budget of the quoted program no longer covers the quoted "
                    "subsidy; take a new quote",
                    reason="subsidy",
                ) from None
            raise service.OrderConflict(
                f"quote {payload.quote_id} was already ordered", reason="quote_used"
            ) from None
        except DBAPIError as exc:
            # PostgreSQL deadlock (40P01) or serialization failure (40001): retry, bounded.
            code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
            if code not in ("40P01", "40001") or attempt == RETRIES:
                raise
            log.warning("order placement retried after %s (attempt %d)", code, attempt)
            await asyncio.sleep(0.01 * attempt)
    if answer is not None:
        answer.committed = True
    service.log_placed(order)
    # The bytes stored for a retry are the bytes sent.
    return Response(body, status_code=status.HTTP_201_CREATED, headers=headers)


async def get_order_or_404(
    order_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Order:
    return await service.get_order_for(session, principal, order_id)


OrderDep = Annotated[Order, Depends(get_order_or_404)]


@router.get("/v1/orders/{order_id}", response_model=OrderOut, responses=problems(401, 404))
async def get_order(order: OrderDep, response: Response) -> OrderOut:
    """Read an order (its enterprise, its providers and the operator)."""
    set_etag(response, order.id, order.version)
    return order_out(order)


@router.post(
    "/v1/orders/{order_id}/cancel", response_model=OrderOut, responses=problems(401, 403, 404, 409)
)
async def cancel_order(
    order: OrderDep, session: SessionDep, principal: CurrentPrincipal, response: Response
) -> OrderOut:
    """Cancel a reserved order: its capacity and subsidy are released."""
    order = await service.cancel_order(session, principal, order)
    set_etag(response, order.id, order.version)
    return order_out(order)


@router.post(
    "/v1/orders/{order_id}/complete",
    response_model=OrderOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def complete_order(
    payload: OrderComplete,
    order: OrderDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
) -> OrderOut:
    """Settle an order on the executed amount; the subsidy may fall, never rise."""
    order = await service.complete_order(session, principal, order, payload.executed_amount)
    set_etag(response, order.id, order.version)
    return order_out(order)
