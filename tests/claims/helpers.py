"""A settled market to claim in: Hangzhou's city program pays on the contract amount
and opens its claims on settlement."""

import itertools
from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from app.core.timeutil import today_shanghai
from tests.factories import (
    OPERATOR,
    bearer,
    create_enterprise,
    create_offer,
    create_provider,
    create_request,
)

PROGRAM = "hz-city-compute-2024"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
_seq = itertools.count(1)


async def reviewer(client: AsyncClient, *programs: str) -> dict[str, Any]:
    resp = await client.post(
        "/v1/api-keys",
        json={"role": "reviewer", "program_ids": list(programs or (PROGRAM,))},
        headers=OPERATOR,
    )
    assert resp.status_code == 201, resp.text
    key: dict[str, Any] = resp.json()
    key["headers"] = bearer(key["key"])
    return key


async def hz_market(client: AsyncClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A provider on hz-planned-icc and an enterprise in Gongshu (330105): only the city
    program is eligible (30% on domestic hardware, on the contract amount)."""
    provider = await create_provider(client, lists=("hz-planned-icc",), region_code="330106")
    offer = await create_offer(client, provider, cards_total=64, price_per_card_hour="12.00")
    enterprise = await create_enterprise(client, region_code="330105")
    return provider, offer, enterprise


async def settled_order(
    client: AsyncClient,
    provider: dict[str, Any],
    offer: dict[str, Any],
    enterprise: dict[str, Any],
    *,
    cards: int = 8,
    hours: int = 100,
    executed: str | None = None,
) -> dict[str, Any]:
    """An order placed and completed (settled); executed defaults to the gross amount."""
    request = await create_request(client, enterprise, cards=cards, hours=hours)
    quote = await client.post(
        "/v1/quotes",
        json={"request_id": request["id"], "offer_id": offer["id"]},
        headers=bearer(enterprise["api_key"]),
    )
    assert quote.status_code == 201, quote.text
    placed = await client.post(
        "/v1/orders", json={"quote_id": quote.json()["id"]}, headers=bearer(enterprise["api_key"])
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    done = await client.post(
        f"/v1/orders/{order['id']}/complete",
        json={"executed_amount": executed or order["gross_amount"]},
        headers=bearer(provider["api_key"]),
    )
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


async def upload(
    client: AsyncClient, headers: dict[str, str], content: bytes | None = None, **kw: Any
) -> Any:
    data = content if content is not None else PDF + str(next(_seq)).encode()
    return await client.post(
        "/v1/evidence",
        files={"file": (kw.get("name", "doc.pdf"), data, kw.get("media_type", "application/pdf"))},
        headers=headers,
    )


async def documents_for(
    client: AsyncClient, enterprise: dict[str, Any], order: dict[str, Any], **amounts: str
) -> list[dict[str, Any]]:
    """A contract, an invoice and a payment covering the order's executed amount."""
    headers = bearer(enterprise["api_key"])
    ids = []
    for _ in range(3):
        resp = await upload(client, headers)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    executed = order["executed_amount"]
    return [
        {"kind": "contract", "order_id": order["id"], "number": "HT-1", "evidence_id": ids[0]},
        {
            "kind": "invoice",
            "order_id": order["id"],
            "number": "24332000000012345678",
            "amount": amounts.get("invoice", executed),
            "issued_on": "2026-05-02",
            "evidence_id": ids[1],
        },
        {
            "kind": "payment",
            "order_id": order["id"],
            "reference": "BANK-REF-1",
            "amount": amounts.get("payment", executed),
            "paid_on": "2026-05-03",
            "evidence_id": ids[2],
        },
    ]


async def file_claim(
    client: AsyncClient,
    enterprise: dict[str, Any],
    orders: list[dict[str, Any]],
    documents: list[dict[str, Any]] | None = None,
    *,
    program_id: str = PROGRAM,
    year: int | None = None,
    key: str | None = None,
) -> Any:
    headers = bearer(enterprise["api_key"])
    if key:
        headers["Idempotency-Key"] = key
    return await client.post(
        "/v1/voucher-claims",
        json={
            "program_id": program_id,
            "year": year or today_shanghai().year,
            "order_ids": [o["id"] for o in orders],
            "documents": documents or [],
        },
        headers=headers,
    )


def money(value: str) -> Decimal:
    return Decimal(value)
