"""`python -m app.cli check-invariants`: passes on a consistent market, names what is broken.

The CLI runs its own event loop (asyncio.run), so the tests invoke it from a thread.
"""

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.ledger import service as ledger
from app.models import OrderPart
from tests.factories import OPERATOR, T0, bearer, create_enterprise, create_offer, create_provider
from tests.orders.test_concurrency import quote


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


async def placed_order(client: Any) -> dict[str, Any]:
    provider = await create_provider(client, lists=("binjiang-compute-partner",))
    offer = await create_offer(client, provider, cards_total=4)
    enterprise = await create_enterprise(client)
    q = await quote(client, enterprise, offer, cards=4, hours=10, latest_start=T0.isoformat())
    resp = await client.post(
        "/v1/orders", json={"quote_id": q["id"]}, headers=bearer(enterprise["api_key"])
    )
    assert resp.status_code == 201, resp.text
    order: dict[str, Any] = resp.json()
    return order


async def test_check_invariants_passes_on_a_consistent_market(
    client: Any, cli_env: CliRunner
) -> None:
    await placed_order(client)
    result = await asyncio.to_thread(cli_env.invoke, cli, ["check-invariants"])
    assert result.exit_code == 0, result.output
    assert "all invariants hold" in result.output


async def test_check_invariants_names_an_overbooking(
    client: Any, db: Any, cli_env: CliRunner
) -> None:
    order = await placed_order(client)
    async with db.sessionmaker() as session:
        # Corrupt the data behind the service's back: twice the cards held.
        await session.execute(
            update(OrderPart).where(OrderPart.order_id == order["id"]).values(cards=8)
        )
        await session.commit()
    result = await asyncio.to_thread(cli_env.invoke, cli, ["check-invariants"])
    assert result.exit_code == 1
    assert "8 cards held at once, only 4 exist" in result.output


async def test_check_invariants_names_a_ledger_that_does_not_add_up(
    client: Any, db: Any, cli_env: CliRunner
) -> None:
    order = await placed_order(client)
    part = order["parts"][0]
    async with db.sessionmaker() as session:
        session.add(
            ledger.entry(
                enterprise_id=order["enterprise_id"],
                program_id=part["subsidy"]["program_id"],
                year=2026,
                order_id=order["id"],
                part_id=part["id"],
                kind="reserve",
                amount=Decimal(part["subsidy"]["amount"]),
            )
        )
        await session.commit()
    result = await asyncio.to_thread(cli_env.invoke, cli, ["check-invariants"])
    assert result.exit_code == 1
    assert "reserved" in result.output


async def test_check_invariants_names_a_settlement_above_the_rate_of_what_was_spent(
    client: Any, db: Any, cli_env: CliRunner
) -> None:
    order = await placed_order(client)
    done = await client.post(
        f"/v1/orders/{order['id']}/complete", json={"executed_amount": "400.00"}, headers=OPERATOR
    )
    assert done.status_code == 200, done.text
    result = await asyncio.to_thread(cli_env.invoke, cli, ["check-invariants"])
    assert result.exit_code == 0, result.output
    async with db.sessionmaker() as session:
        # As a settlement that kept the reservation would have it: the rate of a smaller
        # executed amount than the subsidy it settled.
        await session.execute(
            update(OrderPart)
            .where(OrderPart.order_id == order["id"])
            .values(executed_amount=Decimal("100.00"))
        )
        await session.commit()
    result = await asyncio.to_thread(cli_env.invoke, cli, ["check-invariants"])
    assert result.exit_code == 1
    assert "of the executed 100.00 is 60.00" in result.output
