"""The budget usage a match reads (app.ledger.budgets) equals the ledger's sums exactly,
on either side of its watermark and across its refresh."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.timeutil import today_shanghai
from app.ledger import budgets
from app.ledger import service as ledger
from tests.factories import bearer, create_request
from tests.orders.test_flow import market, order, quote_for

PROGRAMS = ["binjiang-compute-2025", "hz-city-compute-2024", "zj-province-compute-2025"]


async def both(db: Any) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    year = today_shanghai().year
    async with db.sessionmaker() as session:
        exact = ledger.used(await ledger.program_balances(session, year, PROGRAMS))
        fast = await budgets.programs_used(session, year, PROGRAMS)
    return {p: exact.get(p, Decimal("0.00")) for p in PROGRAMS}, fast


async def place(client: AsyncClient, enterprise: dict[str, Any], offer: dict[str, Any]) -> Any:
    request = await create_request(client, enterprise, cards=8, hours=100)
    placed = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert placed.status_code == 201, placed.text
    return placed.json()


async def test_budget_usage_is_exact_across_the_watermark(
    client: AsyncClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watermark at "now": what exists at the first read is the summed part.
    monkeypatch.setattr(budgets, "MARGIN", timedelta(0))
    _, offer, enterprise = await market(client, cards_total=64)
    first = await place(client, enterprise, offer)
    exact, fast = await both(db)
    assert fast == exact
    assert exact["binjiang-compute-2025"] > 0
    # Written after the watermark: counted from the recent entries.
    await place(client, enterprise, offer)
    exact, fast = await both(db)
    assert fast == exact
    cancelled = await client.post(
        f"/v1/orders/{first['id']}/cancel", headers=bearer(enterprise["api_key"])
    )
    assert cancelled.status_code == 200, cancelled.text
    exact, fast = await both(db)
    assert fast == exact
    # A refresh sums the old part again from scratch.
    monkeypatch.setattr(budgets, "REFRESH", timedelta(0))
    exact, fast = await both(db)
    assert fast == exact
    async with db.sessionmaker() as session:
        assert await budgets.programs_used(session, today_shanghai().year, []) == {}
