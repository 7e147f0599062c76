"""The budget usage rows orders check against (BudgetUsage) equal the ledger's sums
after every kind of entry, and check-invariants notices when they do not."""

from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.core.timeutil import today_shanghai
from app.ledger import service as ledger
from app.models import BudgetUsage, SubsidyProgram
from app.ops.invariants import check
from tests.factories import bearer, create_request
from tests.orders.test_flow import market, order, quote_for

PROGRAMS = ["binjiang-compute-2025", "hz-city-compute-2024", "zj-province-compute-2025"]


async def both(db: Any) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    year = today_shanghai().year
    async with db.sessionmaker() as session:
        summed = ledger.used(await ledger.program_balances(session, year, PROGRAMS))
        kept = await ledger.programs_used(session, year, PROGRAMS)
    return {p: summed.get(p, Decimal("0.00")) for p in PROGRAMS}, kept


async def place(client: AsyncClient, enterprise: dict[str, Any], offer: dict[str, Any]) -> Any:
    request = await create_request(client, enterprise, cards=8, hours=100)
    placed = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert placed.status_code == 201, placed.text
    return placed.json()


async def set_budget(db: Any, program_id: str, budget: Decimal) -> None:
    """Set a program's annual budget in the table, where the database checks it."""
    async with db.sessionmaker() as session:
        await session.execute(
            update(SubsidyProgram)
            .where(SubsidyProgram.id == program_id)
            .values(annual_budget=budget)
        )
        await session.commit()


async def test_budget_usage_follows_every_entry(client: AsyncClient, db: Any) -> None:
    provider, offer, enterprise = await market(client, cards_total=64)
    first = await place(client, enterprise, offer)
    summed, kept = await both(db)
    assert kept == summed
    assert kept["binjiang-compute-2025"] == Decimal(first["subsidy"]["amount"]) > 0
    second = await place(client, enterprise, offer)
    third = await place(client, enterprise, offer)
    summed, kept = await both(db)
    assert kept == summed
    # A release gives the reservation back.
    cancelled = await client.post(
        f"/v1/orders/{first['id']}/cancel", headers=bearer(enterprise["api_key"])
    )
    assert cancelled.status_code == 200, cancelled.text
    summed, kept = await both(db)
    assert kept == summed
    # A settlement below the reservation releases the rest; a settlement moves nothing.
    gross = Decimal(second["gross_amount"])
    done = await client.post(
        f"/v1/orders/{second['id']}/complete",
        json={"executed_amount": str(gross / 2)},
        headers=bearer(provider["api_key"]),
    )
    assert done.status_code == 200, done.text
    summed, kept = await both(db)
    assert kept == summed
    expected = Decimal(done.json()["subsidy"]["amount"]) + Decimal(third["subsidy"]["amount"])
    assert kept["binjiang-compute-2025"] == expected
    async with db.sessionmaker() as session:
        assert await check(session) == []
        assert await ledger.programs_used(session, today_shanghai().year, []) == {}


async def test_a_usage_row_out_of_step_with_the_ledger_is_reported(
    client: AsyncClient, db: Any
) -> None:
    _, offer, enterprise = await market(client, cards_total=64)
    await place(client, enterprise, offer)
    async with db.sessionmaker() as session:
        await session.execute(
            update(BudgetUsage)
            .where(BudgetUsage.program_id == "binjiang-compute-2025")
            .values(used=BudgetUsage.used - 1)
        )
        await session.commit()
        problems = await check(session)
    assert len(problems) == 1
    assert "binjiang-compute-2025" in problems[0]
    assert "budget usage" in problems[0]


async def test_a_reservation_is_refused_where_it_would_overspend_the_budget(
    client: AsyncClient, db: Any
) -> None:
    # The database moves a budget's usage row with each reservation and checks the
    # budget itself (on PostgreSQL at the commit), so two orders that both read room
    # for themselves cannot both take it.
    _, offer, enterprise = await market(client, cards_total=64)
    placed = await place(client, enterprise, offer)
    program = "binjiang-compute-2025"
    year = today_shanghai().year
    used = Decimal(placed["subsidy"]["amount"])
    more = Decimal("100.00")

    async def reserve_with_budget(budget: Decimal, part_id: str) -> None:
        await set_budget(db, program, budget)
        async with db.sessionmaker() as session:
            entry = ledger.entry(
                enterprise_id=enterprise["id"],
                program_id=program,
                year=year,
                order_id=placed["id"],
                part_id=part_id,
                kind="reserve",
                amount=more,
            )
            try:
                await ledger.append(session, [entry])
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise

    with pytest.raises(IntegrityError) as refused:
        await reserve_with_budget(used + more - Decimal("0.01"), "opt_refused")
    assert ledger.overspends_budget(refused.value)
    async with db.sessionmaker() as session:
        assert (await ledger.programs_used(session, year, [program]))[program] == used
    await reserve_with_budget(used + more, "opt_taken")
    async with db.sessionmaker() as session:
        assert (await ledger.programs_used(session, year, [program]))[program] == used + more
        assert await check(session) == []


async def test_a_release_passes_a_budget_lowered_below_its_usage(
    client: AsyncClient, db: Any
) -> None:
    # Only a reservation is checked against the budget: an order placed before the
    # budget was cut can still be cancelled, which lowers the usage.
    _, offer, enterprise = await market(client, cards_total=64)
    placed = await place(client, enterprise, offer)
    program = "binjiang-compute-2025"
    await set_budget(db, program, Decimal("0.01"))
    cancelled = await client.post(
        f"/v1/orders/{placed['id']}/cancel", headers=bearer(enterprise["api_key"])
    )
    assert cancelled.status_code == 200, cancelled.text
    summed, kept = await both(db)
    assert kept == summed
    assert kept[program] == Decimal("0.00")
