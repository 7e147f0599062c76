"""The security suite's world: objects owned by two providers and two enterprises."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from app.config import Settings
from app.core.db import Base, Database
from app.main import create_app
from tests.factories import OPERATOR, bearer, create_enterprise, create_provider, create_request
from tests.orders.test_flow import market, order, quote_for

# Tables whose rows may change on a refused request without anything having changed:
# the rate limiter's counters and the idempotency records are bookkeeping.
BOOKKEEPING = frozenset({"rate_limit_counters", "idempotency_keys"})
PARTIES = ("provider_a", "provider_b", "enterprise_a", "enterprise_b", "reviewer_a", "reviewer_b")
# Reviewer A reviews the program of enterprise A's claim; reviewer B another program.
CLAIM_PROGRAM = "binjiang-compute-2025"
OTHER_PROGRAM = "hz-city-compute-2024"
RELAXED_PROGRAM = "hz-city-compute-2024"


@dataclass
class World:
    """Provider A owns an offer; enterprise A a request, a quote and an order on that offer,
    and a voucher claim for another, settled order, citing an evidence file.

    B's own nothing of A's: they are the other tenants. Reviewer A reviews the claim's
    program, reviewer B another. Every party has its own key.
    """

    provider_a: dict[str, Any]
    provider_b: dict[str, Any]
    enterprise_a: dict[str, Any]
    enterprise_b: dict[str, Any]
    offer_a: dict[str, Any]
    request_a: dict[str, Any]
    quote_a: dict[str, Any]
    order_a: dict[str, Any]
    open_quote_a: dict[str, Any]
    key_id_a: str
    reviewer_a: dict[str, Any] = field(default_factory=dict)
    reviewer_b: dict[str, Any] = field(default_factory=dict)
    claim_a: dict[str, Any] = field(default_factory=dict)
    evidence_a: dict[str, Any] = field(default_factory=dict)
    settled_a: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self, party: str) -> dict[str, str]:
        if party == "operator":
            return dict(OPERATOR)
        return bearer(getattr(self, party)["api_key"])


@pytest.fixture
async def world(client: AsyncClient) -> World:
    provider_a, offer_a, enterprise_a = await market(client, cards_total=64)
    provider_b = await create_provider(client, lists=("binjiang-compute-partner",))
    enterprise_b = await create_enterprise(client, region_code="330108")
    # Enterprise A is a foundation-model enterprise with a relaxed cap, so that the
    # relaxation paths have a real object to refuse access to.
    flagged = await client.patch(
        f"/v1/enterprises/{enterprise_a['id']}",
        json={"is_foundation_model_enterprise": True},
        headers=OPERATOR,
    )
    assert flagged.status_code == 200, flagged.text
    relaxed = await client.put(
        f"/v1/enterprises/{enterprise_a['id']}/cap-relaxations/{RELAXED_PROGRAM}",
        json={"annual_cap": "12000000.00", "reference": "test"},
        headers=OPERATOR,
    )
    assert relaxed.status_code == 200, relaxed.text
    request_a = await create_request(client, enterprise_a, cards=8, hours=100)
    quote_a = await quote_for(client, enterprise_a, request_a, offer_a)
    placed = await order(client, enterprise_a, quote_a)
    assert placed.status_code == 201, placed.text
    open_quote_a = await quote_for(client, enterprise_a, request_a, offer_a)
    keys = await client.get(
        "/v1/api-keys", params={"role": "provider", "limit": 500}, headers=OPERATOR
    )
    key_id_a = next(k["id"] for k in keys.json()["items"] if k["provider_id"] == provider_a["id"])
    claims = await _claims_world(client, provider_a, offer_a, enterprise_a)
    return World(
        **claims,
        provider_a=provider_a,
        provider_b=provider_b,
        enterprise_a=enterprise_a,
        enterprise_b=enterprise_b,
        offer_a=offer_a,
        request_a=request_a,
        quote_a=quote_a,
        order_a=placed.json(),
        open_quote_a=open_quote_a,
        key_id_a=key_id_a,
    )


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the bookkeeping ones: equal snapshots, nothing changed."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted((tuple(map(repr, r)) for r in rows), key=repr)
    return out


def changed_tables(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


@pytest.fixture
async def other_app(settings: Settings) -> AsyncIterator[Callable[..., AsyncClient]]:
    """`other_app(**settings)`: a client of another app on the same database (own settings)."""
    made: list[Any] = []

    def build(
        *, client: tuple[str, int] = ("127.0.0.1", 50000), raise_errors: bool = True, **changes: Any
    ) -> AsyncClient:
        application = create_app(settings.model_copy(update=changes))
        made.append(application)
        transport = ASGITransport(app=application, client=client, raise_app_exceptions=raise_errors)
        return AsyncClient(transport=transport, base_url="http://test")

    yield build
    for application in made:
        await application.state.db.dispose()


async def make_request(client: AsyncClient, enterprise: dict[str, Any]) -> dict[str, Any]:
    return await create_request(client, enterprise, cards=8, hours=100)


async def _settled(
    client: AsyncClient,
    provider: dict[str, Any],
    offer: dict[str, Any],
    enterprise: dict[str, Any],
) -> dict[str, Any]:
    request = await create_request(client, enterprise, cards=8, hours=100)
    placed = await order(client, enterprise, await quote_for(client, enterprise, request, offer))
    assert placed.status_code == 201, placed.text
    done = await client.post(
        f"/v1/orders/{placed.json()['id']}/complete",
        json={"executed_amount": placed.json()["gross_amount"]},
        headers=bearer(provider["api_key"]),
    )
    assert done.status_code == 200, done.text
    settled: dict[str, Any] = done.json()
    return settled


async def _claims_world(
    client: AsyncClient,
    provider: dict[str, Any],
    offer: dict[str, Any],
    enterprise: dict[str, Any],
) -> dict[str, Any]:
    """Enterprise A's claim (its program opened on settlement for the test), the evidence
    it cites, another settled order not claimed yet, and the two reviewers' keys."""
    opened = await client.patch(
        f"/v1/subsidy-programs/{CLAIM_PROGRAM}",
        json={"claims_open": "on_settlement"},
        headers=OPERATOR,
    )
    assert opened.status_code == 200, opened.text
    claimed = await _settled(client, provider, offer, enterprise)
    settled = await _settled(client, provider, offer, enterprise)
    evidence = await client.post(
        "/v1/evidence",
        files={"file": ("contract.pdf", b"%PDF-1.4 world contract", "application/pdf")},
        headers=bearer(enterprise["api_key"]),
    )
    assert evidence.status_code == 201, evidence.text
    claim = await client.post(
        "/v1/voucher-claims",
        json={
            "program_id": CLAIM_PROGRAM,
            "year": int(claimed["created_at"][:4]),
            "order_ids": [claimed["id"]],
            "documents": [
                {
                    "kind": "contract",
                    "order_id": claimed["id"],
                    "number": "HT-1",
                    "evidence_id": evidence.json()["id"],
                }
            ],
        },
        headers=bearer(enterprise["api_key"]),
    )
    assert claim.status_code == 201, claim.text
    reviewers = {}
    for name, program in (("reviewer_a", CLAIM_PROGRAM), ("reviewer_b", OTHER_PROGRAM)):
        key = await client.post(
            "/v1/api-keys", json={"role": "reviewer", "program_ids": [program]}, headers=OPERATOR
        )
        assert key.status_code == 201, key.text
        reviewers[name] = {**key.json(), "api_key": key.json()["key"]}
    return {
        **reviewers,
        "claim_a": claim.json(),
        "evidence_a": evidence.json(),
        "settled_a": settled,
    }
