"""GET /v1/enterprises/{id}/voucher-usage: each program's status, and no draft that only
reads as usable."""

from httpx import AsyncClient

from tests.factories import OPERATOR, bearer, create_enterprise, create_request
from tests.orders.test_flow import market, order, quote_for

DRAFT = "binjiang-hzaicc-2024-draft"


async def usage(client: AsyncClient, enterprise: dict[str, str]) -> dict[str, dict[str, str]]:
    resp = await client.get(
        f"/v1/enterprises/{enterprise['id']}/voucher-usage", headers=bearer(enterprise["api_key"])
    )
    assert resp.status_code == 200, resp.text
    return {item["program_id"]: item for item in resp.json()["items"]}


async def test_rows_carry_the_programs_status_and_drafts_are_left_out(
    client: AsyncClient,
) -> None:
    enterprise = await create_enterprise(client, region_code="330108")
    items = await usage(client, enterprise)
    # The seeded draft (seed 003, 征求意见稿) pays nothing: its cap is not "remaining".
    assert DRAFT not in items
    assert items["binjiang-compute-2025"]["status"] == "active"
    assert {item["status"] for item in items.values()} == {"active"}

    retired = await client.patch(
        "/v1/subsidy-programs/zj-province-compute-2025",
        json={"status": "retired"},
        headers=OPERATOR,
    )
    assert retired.status_code == 200, retired.text
    assert (await usage(client, enterprise))["zj-province-compute-2025"]["status"] == "retired"

    activated = await client.patch(
        f"/v1/subsidy-programs/{DRAFT}",
        json={"status": "active", "effective_from": "2024-01-01"},
        headers=OPERATOR,
    )
    assert activated.status_code == 200, activated.text
    assert (await usage(client, enterprise))[DRAFT]["status"] == "active"


async def test_a_program_with_a_balance_stays_listed_whatever_its_status(
    client: AsyncClient,
) -> None:
    _, offer, enterprise = await market(client)
    request = await create_request(client, enterprise)
    placed = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert placed.status_code == 201, placed.text
    program = placed.json()["subsidy"]["program_id"]
    resp = await client.patch(
        f"/v1/subsidy-programs/{program}", json={"status": "retired"}, headers=OPERATOR
    )
    assert resp.status_code == 200, resp.text
    row = (await usage(client, enterprise))[program]
    assert row["status"] == "retired"
    assert row["reserved"] == placed.json()["subsidy"]["amount"]
