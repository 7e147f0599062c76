"""A small voucher market built through the public API, for the console's tests and
screenshots: providers with offers (domestic and not), enterprises in several
districts, and orders placed and completed, so that programs have something to show."""

from dataclasses import dataclass, field
from typing import Any

from httpx import AsyncClient

from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)
from tests.orders.test_flow import quote_for


@dataclass
class Market:
    providers: list[dict[str, Any]] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)
    enterprises: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)


async def build_market(
    client: AsyncClient,
    *,
    orders: int = 4,
    provider_name: str | None = None,
    enterprise_name: str | None = None,
    complete: bool = True,
) -> Market:
    """Two Binjiang-listed providers (one domestic offer, one not), enterprises in
    Binjiang and Xihu, and `orders` orders spread over them, completed at their gross."""
    market = Market()
    domestic = await create_provider(client, lists=("binjiang-compute-partner",))
    foreign = await create_provider(client, lists=("binjiang-compute-partner",))
    if provider_name is not None:
        renamed = await client.patch(
            f"/v1/providers/{domestic['id']}", json={"name": provider_name}, headers=OPERATOR
        )
        assert renamed.status_code == 200, renamed.text
        domestic["name"] = provider_name
    market.providers = [domestic, foreign]
    market.offers = [
        await create_offer(client, domestic, cards_total=256, price_per_card_hour="12.00"),
        await create_offer(
            client,
            foreign,
            accelerator_id="nvidia-a800-sxm-80gb",
            cards_total=256,
            price_per_card_hour="15.00",
        ),
    ]
    market.enterprises = [
        await create_enterprise(client, region_code="330108", name=enterprise_name),
        await create_enterprise(client, region_code="330106"),
    ]
    for n in range(orders):
        enterprise = market.enterprises[n % 2]
        offer = market.offers[(n // 2) % 2]
        provider = market.providers[(n // 2) % 2]
        request = await create_request(client, enterprise, cards=8, hours=100)
        quote = await quote_for(client, enterprise, request, offer)
        placed = await client.post(
            "/v1/orders", json={"quote_id": quote["id"]}, headers=bearer(enterprise["api_key"])
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        if complete:
            done = await client.post(
                f"/v1/orders/{order['id']}/complete",
                json={"executed_amount": order["gross_amount"]},
                headers=bearer(provider["api_key"]),
            )
            assert done.status_code == 200, done.text
            order = done.json()
        market.orders.append(order)
    return market
