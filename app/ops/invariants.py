"""Recompute from the orders and the ledger that nothing is overbooked or overspent."""

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.core import sqltime
from app.core.db import on_session
from app.core.money import ZERO
from app.enterprises import service as enterprise_service
from app.ledger import service as ledger
from app.matching import engine
from app.models import (
    BudgetUsage,
    ClaimPart,
    Enterprise,
    LedgerEntry,
    Offer,
    Order,
    OrderPart,
    PricePaidDay,
    VoucherClaim,
)
from app.models.status import OrderStatus
from app.subsidies import service as subsidy_service
from app.subsidies.rules import EnterpriseFacts, effective_cap, settled_subsidy


async def check(session: AsyncSession) -> list[str]:
    """Every broken invariant, in words; an empty list means all hold."""
    problems: list[str] = []
    problems += await _capacity(session)
    problems += await _caps_and_budgets(session)
    problems += await _orders_balance(session)
    problems += await _claims(session)
    problems += await _prices_paid(session)
    return problems


async def _capacity(session: AsyncSession) -> list[str]:
    holds: dict[str, list[engine.Hold]] = defaultdict(list)
    rows = await session.execute(
        select(OrderPart.offer_id, OrderPart.start, OrderPart.end, OrderPart.cards).where(
            OrderPart.holding.is_(True)
        )
    )
    for offer_id, start, end, cards in rows:
        holds[offer_id].append(engine.Hold(start=start, end=end, cards=cards))
    if not holds:
        return []
    # The offers with a live hold, by a join: a list of their ids can pass the
    # drivers' limit on a statement's parameters (32,767 on asyncpg) in a large market.
    totals = dict(
        (
            await session.execute(
                select(Offer.id, Offer.cards_total).where(
                    Offer.id.in_(select(OrderPart.offer_id).where(OrderPart.holding.is_(True)))
                )
            )
        ).all()
    )
    out = []
    for offer_id, offer_holds in holds.items():
        first = min(h.start for h in offer_holds)
        last = max(h.end for h in offer_holds)
        peak = engine.peak_usage(offer_holds, first, last)
        if peak > totals[offer_id]:
            out.append(
                f"offer {offer_id}: {peak} cards held at once, only {totals[offer_id]} exist"
            )
    return out


async def _caps_and_budgets(session: AsyncSession) -> list[str]:
    programs = {
        s.program.id: s.program for s in await subsidy_service.load_programs(on_session(session))
    }
    sums: dict[tuple[str, str, int], dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(ledger.KINDS + ledger.CLAIM_KINDS, ZERO)
    )
    for entry in await session.scalars(select(LedgerEntry)):
        sums[(entry.enterprise_id, entry.program_id, entry.year)][ledger.folded_kind(entry)] += (
            entry.amount
        )
    out = []
    program_year: dict[tuple[str, int], Decimal] = defaultdict(lambda: ZERO)
    enterprises = {
        e.id: e
        for e in await session.scalars(
            select(Enterprise).options(selectinload(Enterprise.cap_relaxations))
        )
    }
    for (enterprise_id, program_id, year), s in sums.items():
        used = s["reserve"] - s["release"] - s["claim_release"]
        if s["settle"] + s["release"] > s["reserve"]:
            out.append(
                f"enterprise {enterprise_id}, {program_id} {year}: settled and released "
                f"{s['settle'] + s['release']} exceed reserved {s['reserve']}"
            )
        program_year[(program_id, year)] += used
        enterprise = enterprises[enterprise_id]
        cap = effective_cap(
            programs[program_id],
            EnterpriseFacts(
                region_code=enterprise.region_code,
                is_foundation_model_enterprise=enterprise.is_foundation_model_enterprise,
                relaxed_caps=enterprise_service.relaxed_caps(enterprise),
            ),
        )
        if cap is not None and used > cap:
            out.append(
                f"enterprise {enterprise_id} is over its {program_id} cap for {year}: "
                f"{used} > {cap}"
            )
    for (program_id, year), used in program_year.items():
        budget = programs[program_id].annual_budget
        if budget is not None and used > budget:
            out.append(f"program {program_id} is over its {year} budget: {used} > {budget}")
    # The usage rows orders check budgets against must equal the ledger's sums.
    rows = {
        (program_id, year): used
        for program_id, year, used in await session.execute(
            select(BudgetUsage.program_id, BudgetUsage.year, BudgetUsage.used)
        )
    }
    for key in sorted(set(rows) | set(program_year)):
        kept, summed = rows.get(key, ZERO), program_year.get(key, ZERO)
        if kept != summed:
            out.append(
                f"program {key[0]}, {key[1]}: budget usage says {kept} used, "
                f"the ledger sums to {summed}"
            )
    return out


async def _orders_balance(session: AsyncSession) -> list[str]:
    entries: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(ledger.KINDS, ZERO))
    # An order's own entries; a claim's are proved by `_claims`.
    for entry in await session.scalars(select(LedgerEntry).where(LedgerEntry.claim_id.is_(None))):
        entries[entry.part_id][entry.kind] += entry.amount
    out = []
    orders = await session.scalars(select(Order).options(selectinload(Order.parts)))
    for order in orders:
        if sum((p.gross_amount for p in order.parts), ZERO) != order.gross_amount:
            out.append(f"order {order.id}: parts' gross does not add up to the order's")
        for part in order.parts:
            e = entries.get(part.id, dict.fromkeys(ledger.KINDS, ZERO))
            expected_reserve = part.subsidy_amount if part.program_id else ZERO
            if e["reserve"] != expected_reserve:
                out.append(
                    f"order {order.id} part {part.id}: reserved {e['reserve']} in the "
                    f"ledger, {expected_reserve} on the order"
                )
            if order.status == OrderStatus.reserved and (e["settle"] or e["release"]):
                out.append(f"order {order.id}: reserved but has settle/release entries")
            if order.status == OrderStatus.cancelled and (
                e["release"] != e["reserve"] or e["settle"]
            ):
                out.append(f"order {order.id}: cancelled but its reservation is not released")
            if order.status == OrderStatus.cancelled and part.holding:
                out.append(f"order {order.id}: cancelled but still holds capacity")
            if order.status == OrderStatus.completed:
                settled = part.settled_subsidy or ZERO
                if e["settle"] != settled or e["settle"] + e["release"] != e["reserve"]:
                    out.append(
                        f"order {order.id} part {part.id}: settlement entries do not "
                        "add up to the reservation"
                    )
                due = (
                    settled_subsidy(e["reserve"], Decimal(part.rate), part.executed_amount)
                    if part.program_id and part.executed_amount is not None
                    else ZERO
                )
                if e["settle"] != due:
                    out.append(
                        f"order {order.id} part {part.id}: settled {e['settle']}, but its "
                        f"rate {part.rate} of the executed {part.executed_amount} is {due}"
                    )
    return out


async def _claims(session: AsyncSession) -> list[str]:
    """Per enterprise, program and year: disbursed ≤ approved ≤ settled, and what a
    claim released never more than was settled; per claim, its ledger entries equal
    its amounts; no order part in two live claims."""
    out = []
    sums: dict[tuple[str, str, int], dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(ledger.KINDS + ledger.CLAIM_KINDS, ZERO)
    )
    per_claim: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(ledger.CLAIM_KINDS, ZERO)
    )
    for entry in await session.scalars(select(LedgerEntry)):
        kind = ledger.folded_kind(entry)
        sums[(entry.enterprise_id, entry.program_id, entry.year)][kind] += entry.amount
        if entry.claim_id is not None:
            per_claim[entry.claim_id][kind] += entry.amount
    for (enterprise_id, program_id, year), s in sorted(sums.items()):
        where = f"enterprise {enterprise_id}, {program_id} {year}"
        if s["claim_disburse"] > s["claim_approve"]:
            out.append(f"{where}: disbursed {s['claim_disburse']} > approved {s['claim_approve']}")
        if s["claim_approve"] + s["claim_release"] > s["settle"]:
            out.append(
                f"{where}: approved {s['claim_approve']} and released by review "
                f"{s['claim_release']} exceed settled {s['settle']}"
            )
    for claim in await session.scalars(select(VoucherClaim)):
        s = per_claim[claim.id]
        approved = claim.approved_amount or ZERO
        if s["claim_approve"] != approved or s["claim_disburse"] != claim.disbursed_amount:
            out.append(
                f"claim {claim.id}: the ledger holds approved {s['claim_approve']} and "
                f"disbursed {s['claim_disburse']}, the claim {approved} and "
                f"{claim.disbursed_amount}"
            )
        if claim.disbursed_amount > approved:
            out.append(
                f"claim {claim.id}: disbursed {claim.disbursed_amount} > approved {approved}"
            )
        if claim.approved_amount is not None and approved > claim.amount:
            out.append(f"claim {claim.id}: approved {approved} > claimed {claim.amount}")
    twice = await session.execute(
        select(ClaimPart.part_id, func.count())
        .where(ClaimPart.live.is_(True))
        .group_by(ClaimPart.part_id)
        .having(func.count() > 1)
    )
    for part_id, count in twice:
        out.append(f"order part {part_id} is in {count} live claims")
    return out


async def _prices_paid(session: AsyncSession) -> list[str]:
    """The day totals the price index reads equal the holding order parts summed again:
    card-hours per day, accelerator, region and price; orders per day and accelerator."""
    dialect = session.get_bind().dialect.name
    day = sqltime.local_day(dialect, Order.created_at)
    hours = sqltime.hours_between(dialect, OrderPart.start, OrderPart.end)
    holding = (
        select()
        .select_from(OrderPart)
        .join(Order, Order.id == OrderPart.order_id)
        .join(Offer, Offer.id == OrderPart.offer_id)
        .where(OrderPart.holding.is_(True))
    )
    truth_hours = {
        (str(d), acc, region, price): int(ch)
        for d, acc, region, price, ch in await session.execute(
            holding.add_columns(
                day,
                Offer.accelerator_id,
                Offer.region_code,
                OrderPart.price_per_card_hour,
                func.sum(OrderPart.cards * hours),
            ).group_by(day, Offer.accelerator_id, Offer.region_code, OrderPart.price_per_card_hour)
        )
    }
    truth_orders = {
        (str(d), acc): int(n)
        for d, acc, n in await session.execute(
            holding.add_columns(
                day, Offer.accelerator_id, func.count(func.distinct(OrderPart.order_id))
            ).group_by(day, Offer.accelerator_id)
        )
    }
    kept_hours: dict[tuple[str, str, str, Decimal], int] = {}
    kept_orders: dict[tuple[str, str], int] = defaultdict(int)
    for row in await session.scalars(select(PricePaidDay)):
        if row.card_hours:
            key = (row.day.isoformat(), row.accelerator_id, row.region_code)
            kept_hours[(*key, row.price_per_card_hour)] = row.card_hours
        kept_orders[(row.day.isoformat(), row.accelerator_id)] += row.orders
    out = [
        f"prices paid on {key[0]} for {key[1]} in {key[2]} at {key[3]}: "
        f"{kept_hours.get(key, 0)} "
        f"card-hours kept, {truth_hours.get(key, 0)} in the orders"
        for key in sorted(set(truth_hours) | set(kept_hours))
        if truth_hours.get(key, 0) != kept_hours.get(key, 0)
    ]
    out += [
        f"orders on {key[0]} for {key[1]}: {kept_orders.get(key, 0)} kept, "
        f"{truth_orders.get(key, 0)} in the orders"
        for key in sorted(set(truth_orders) | {k for k, n in kept_orders.items() if n})
        if truth_orders.get(key, 0) != kept_orders.get(key, 0)
    ]
    return out
