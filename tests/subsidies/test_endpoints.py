"""Endpoint tests for voucher programs and what-if quotes (policies.md)."""

from decimal import Decimal
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from app.config import Settings
from app.core.db import Database
from app.main import create_app
from app.subsidies.service import load_programs
from tests.factories import OPERATOR, bearer, create_provider


def quote_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enterprise": {
            "region_code": "330108",
            "is_foundation_model_enterprise": False,
            "relies_on_filed_model": False,
            "relaxed_caps": {},
        },
        "provider": {
            "lists": ["binjiang-compute-partner", "hz-matchmaking-partner"],
            "status": "listed",
        },
        "domestic": True,
        "purpose": "training",
        "gross_amount": "552960.00",
        "contract_date": "2026-03-01",
        "already_claimed": {},
    }
    body.update(overrides)
    return body


# policies.md, "Worked examples" 1-5, through the API.
WORKED = [
    pytest.param(
        "330108",
        ["binjiang-compute-partner", "hz-matchmaking-partner"],
        True,
        "training",
        False,
        "552960.00",
        "binjiang-compute-2025",
        "0.60",
        "331776.00",
        "221184.00",
        id="example-1-binjiang-domestic-60pct",
    ),
    pytest.param(
        "330108",
        ["binjiang-compute-partner", "hz-matchmaking-partner"],
        False,
        "training",
        False,
        "1382400.00",
        "binjiang-compute-2025",
        "0.30",
        "414720.00",
        "967680.00",
        id="example-2-binjiang-nondomestic-30pct",
    ),
    pytest.param(
        "330106",
        ["hz-planned-icc"],
        False,
        "maas",
        True,
        "7600.00",
        "hz-city-compute-2024",
        "0.30",
        "2280.00",
        "5320.00",
        id="example-3-hangzhou-maas-filed-model-30pct",
    ),
    pytest.param(
        "330106",
        ["hz-planned-icc"],
        False,
        "training",
        False,
        "7600.00",
        "hz-city-compute-2024",
        "0.20",
        "1520.00",
        "6080.00",
        id="example-4-hangzhou-other-hardware-20pct",
    ),
    pytest.param(
        "310115",
        ["hz-planned-icc"],
        True,
        "training",
        False,
        "10000.00",
        None,
        "0.00",
        "0.00",
        "10000.00",
        id="example-5-shanghai-none",
    ),
]


@pytest.mark.parametrize(
    (
        "region",
        "lists",
        "domestic",
        "purpose",
        "filed",
        "gross",
        "program",
        "rate",
        "amount",
        "net",
    ),
    WORKED,
)
async def test_worked_examples_through_the_api(
    client: AsyncClient,
    region: str,
    lists: list[str],
    domestic: bool,
    purpose: str,
    filed: bool,
    gross: str,
    program: str | None,
    rate: str,
    amount: str,
    net: str,
) -> None:
    body = quote_body(
        enterprise={"region_code": region, "relies_on_filed_model": filed},
        provider={"lists": lists, "status": "listed"},
        domestic=domestic,
        purpose=purpose,
        gross_amount=gross,
    )
    resp = await client.post("/v1/subsidy-quotes", json=body, headers=OPERATOR)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["subsidy"]["program_id"] == program
    assert data["subsidy"]["rate"] == rate
    assert data["subsidy"]["amount"] == amount
    assert data["net_amount"] == net
    assert {c["program_id"] for c in data["considered"]} >= {
        "hz-city-compute-2024",
        "zj-province-compute-2025",
        "binjiang-compute-2025",
        "binjiang-hzaicc-2024-draft",
    }
    for item in data["considered"]:
        assert item["reason"], item


async def test_any_key_may_quote_but_not_anonymous(client: AsyncClient) -> None:
    provider = await create_provider(client)
    ok = await client.post(
        "/v1/subsidy-quotes", json=quote_body(), headers=bearer(provider["api_key"])
    )
    assert ok.status_code == 200
    anonymous = await client.post("/v1/subsidy-quotes", json=quote_body())
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"gross_amount": "-1.00"}, "gross_amount"),
        ({"gross_amount": "abc"}, "gross_amount"),
        ({"gross_amount": 1000.5}, "gross_amount"),
        ({"gross_amount": "1e400"}, "gross_amount"),
        ({"gross_amount": "99999999999999999999.00"}, "gross_amount"),
        ({"purpose": "mining"}, "purpose"),
        ({"contract_date": "2026-02-30"}, "contract_date"),
        ({"enterprise": {"region_code": "33010"}}, "region_code"),
        ({"enterprise": {"region_code": "ABCDEF"}}, "region_code"),
        ({"enterprise": {"region_code": "330199"}}, "region_code"),
        ({"already_claimed": {"hz-city-compute-2024": "-5.00"}}, "already_claimed"),
        # Found by schemathesis: a JSON integer was taken as an amount.
        ({"already_claimed": {"hz-city-compute-2024": 0}}, "already_claimed"),
        ({"gross_amount": 1000}, "gross_amount"),
        ({"domestic": 1}, "domestic"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_bad_quote_input_is_a_422_problem(
    client: AsyncClient, override: dict[str, Any], field: str
) -> None:
    resp = await client.post("/v1/subsidy-quotes", json=quote_body(**override), headers=OPERATOR)
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert any(field in [str(p) for p in e["loc"]] for e in problem["errors"]), problem


async def test_programs_are_listed_with_budget_figures(client: AsyncClient) -> None:
    resp = await client.get("/v1/subsidy-programs", headers=OPERATOR)
    assert resp.status_code == 200
    programs = {p["id"]: p for p in resp.json()["items"]}
    binjiang = programs["binjiang-compute-2025"]
    assert binjiang["budget_used"] == "0.00"
    assert binjiang["budget_remaining"] == "100000000.00"
    assert binjiang["rates"][0]["rate"] == "0.60"
    assert programs["zj-province-compute-2025"]["budget_remaining"] is None
    assert programs["binjiang-hzaicc-2024-draft"]["status"] == "draft"


async def test_retiring_a_program_takes_effect_at_once(client: AsyncClient) -> None:
    first = await client.post("/v1/subsidy-quotes", json=quote_body(), headers=OPERATOR)
    assert first.json()["subsidy"]["program_id"] == "binjiang-compute-2025"

    current = await client.get("/v1/subsidy-programs/binjiang-compute-2025", headers=OPERATOR)
    retire = await client.patch(
        "/v1/subsidy-programs/binjiang-compute-2025",
        json={"status": "retired"},
        headers={**OPERATOR, "If-Match": current.headers["etag"]},
    )
    assert retire.status_code == 200, retire.text
    assert retire.json()["status"] == "retired"
    # Binjiang is in Hangzhou: with the district program retired, the city one applies.
    after = await client.post("/v1/subsidy-quotes", json=quote_body(), headers=OPERATOR)
    data = after.json()
    assert data["subsidy"]["program_id"] == "hz-city-compute-2024"
    retired = next(c for c in data["considered"] if c["program_id"] == "binjiang-compute-2025")
    assert retired["eligible"] is False
    assert "retired" in retired["reason"]

    stale = await client.patch(
        "/v1/subsidy-programs/binjiang-compute-2025",
        json={"status": "active"},
        headers={**OPERATOR, "If-Match": current.headers["etag"]},
    )
    assert stale.status_code == 412
    again = await client.patch(
        "/v1/subsidy-programs/binjiang-compute-2025", json={"status": "active"}, headers=OPERATOR
    )
    assert again.status_code == 200
    back = await client.post("/v1/subsidy-quotes", json=quote_body(), headers=OPERATOR)
    assert back.json()["subsidy"]["program_id"] == "binjiang-compute-2025"


async def test_program_changes_are_audited(client: AsyncClient, db: Any) -> None:
    from sqlalchemy import select

    from app.models import AuditEntry

    await client.patch(
        "/v1/subsidy-programs/hz-city-compute-2024",
        json={"annual_budget": "300000000.00"},
        headers=OPERATOR,
    )
    async with db.sessionmaker() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.resource_id == "hz-city-compute-2024")
            )
        ).all()
    assert len(entries) == 1
    assert entries[0].before["annual_budget"] == "250000000.00"
    assert entries[0].after["annual_budget"] == "300000000.00"
    assert entries[0].principal_role == "operator"


def district_program(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "xihu-compute-2026",
        "name": "西湖区算力券 (test)",
        "voucher_type": "compute",
        "level": "district",
        "status": "active",
        "effective_from": "2026-01-01",
        "effective_until": "2026-12-31",
        "enterprise_regions": {"include": ["330106"], "exclude": []},
        "provider_lists_any": ["hz-planned-icc"],
        "purposes": ["training", "inference", "application", "maas", "agent"],
        "base": "contract_amount",
        "rates": [{"rate": "0.40", "when": {}}],
        "enterprise_annual_cap": "1000000.00",
        "cap_relaxable_for_foundation_model_enterprises": False,
        "annual_budget": "5000000.00",
        "source": {"document": "test", "clause": "test"},
    }
    body.update(overrides)
    return body


async def test_a_new_district_program_by_one_post_is_used_next(client: AsyncClient) -> None:
    body = quote_body(
        enterprise={"region_code": "330106"},
        provider={"lists": ["hz-planned-icc"], "status": "listed"},
        domestic=False,
        gross_amount="7600.00",
    )
    before = await client.post("/v1/subsidy-quotes", json=body, headers=OPERATOR)
    assert before.json()["subsidy"]["program_id"] == "hz-city-compute-2024"
    created = await client.post("/v1/subsidy-programs", json=district_program(), headers=OPERATOR)
    assert created.status_code == 201, created.text
    assert created.json()["budget_remaining"] == "5000000.00"
    after = await client.post("/v1/subsidy-quotes", json=body, headers=OPERATOR)
    assert after.json()["subsidy"] == {
        "program_id": "xihu-compute-2026",
        "rate": "0.40",
        "amount": "3040.00",
        "base": "contract_amount",
        "capped_by": None,
    }
    assert after.json()["net_amount"] == "4560.00"


@pytest.mark.parametrize(
    "override",
    [
        {"rates": [{"rate": "1.50", "when": {}}]},
        {"effective_from": "2027-01-01", "effective_until": "2026-01-01"},
        {"provider_lists_any": ["no-such-list"]},
        # Program regions are prefixes of real GB/T 2260 codes (api.md).
        {"enterprise_regions": {"include": ["3399"], "exclude": []}},
        {"enterprise_regions": {"include": ["33"], "exclude": ["330199"]}},
        {"purposes": ["mining"]},
        {"base": "vibes"},
        {"id": "Bad Id!"},
        {"status": "active", "effective_from": None},
    ],
)
async def test_invalid_programs_are_refused_and_nothing_changes(
    client: AsyncClient, override: dict[str, Any]
) -> None:
    resp = await client.post(
        "/v1/subsidy-programs", json=district_program(**override), headers=OPERATOR
    )
    assert resp.status_code == 422, resp.text
    listed = await client.get("/v1/subsidy-programs", headers=OPERATOR)
    assert "xihu-compute-2026" not in {p["id"] for p in listed.json()["items"]}


async def test_a_patch_that_breaks_the_program_is_refused(client: AsyncClient) -> None:
    resp = await client.patch(
        "/v1/subsidy-programs/binjiang-compute-2025",
        json={"effective_until": "2020-01-01"},
        headers=OPERATOR,
    )
    assert resp.status_code == 422, resp.text
    unchanged = await client.get("/v1/subsidy-programs/binjiang-compute-2025", headers=OPERATOR)
    assert unchanged.json()["effective_until"] == "2028-06-09"


async def test_only_the_operator_changes_programs(client: AsyncClient) -> None:
    provider = await create_provider(client)
    resp = await client.patch(
        "/v1/subsidy-programs/binjiang-compute-2025",
        json={"status": "retired"},
        headers=bearer(provider["api_key"]),
    )
    assert resp.status_code == 403
    created = await client.post(
        "/v1/subsidy-programs", json=district_program(), headers=bearer(provider["api_key"])
    )
    assert created.status_code == 403


async def test_activating_the_draft_makes_it_apply(client: AsyncClient) -> None:
    body = quote_body(
        provider={"lists": ["hz-ai-computing-center"], "status": "listed"}, gross_amount="100000.00"
    )
    before = await client.post("/v1/subsidy-quotes", json=body, headers=OPERATOR)
    assert before.json()["subsidy"]["program_id"] is None
    act = await client.patch(
        "/v1/subsidy-programs/binjiang-hzaicc-2024-draft",
        json={"status": "active", "effective_from": "2026-01-01", "effective_until": "2028-12-31"},
        headers=OPERATOR,
    )
    assert act.status_code == 200, act.text
    after = await client.post("/v1/subsidy-quotes", json=body, headers=OPERATOR)
    assert after.json()["subsidy"]["program_id"] == "binjiang-hzaicc-2024-draft"
    assert after.json()["subsidy"]["amount"] == "50000.00"


async def test_a_change_made_by_another_process_applies_to_the_next_quote(
    client: AsyncClient, settings: Settings
) -> None:
    # Two apps on one database stand for two worker processes, each with its own
    # program cache: a retirement through one is priced by the other at once.
    other = create_app(settings)
    try:
        async with AsyncClient(transport=ASGITransport(app=other), base_url="http://t") as peer:
            before = await peer.post("/v1/subsidy-quotes", json=quote_body(), headers=OPERATOR)
            assert before.json()["subsidy"]["program_id"] == "binjiang-compute-2025"
            retire = await client.patch(
                "/v1/subsidy-programs/binjiang-compute-2025",
                json={"status": "retired"},
                headers=OPERATOR,
            )
            assert retire.status_code == 200
            after = await peer.post("/v1/subsidy-quotes", json=quote_body(), headers=OPERATOR)
            assert after.json()["subsidy"]["program_id"] == "hz-city-compute-2024"
    finally:
        await other.state.db.dispose()


async def test_programs_are_parsed_once_until_the_table_changes(
    client: AsyncClient, db: Database
) -> None:
    async with db.sessionmaker() as session:
        first = await load_programs(session)
        again = await load_programs(session)
    # Unchanged: the very same parsed programs, not a new parse.
    assert [s.program for s in again] == [s.program for s in first]
    assert all(a.program is b.program for a, b in zip(first, again, strict=True))
    changed = await client.patch(
        "/v1/subsidy-programs/hz-city-compute-2024",
        json={"enterprise_annual_cap": "900000.00"},
        headers=OPERATOR,
    )
    assert changed.status_code == 200, changed.text
    async with db.sessionmaker() as session:
        after = {s.program.id: s for s in await load_programs(session)}
    city = after["hz-city-compute-2024"]
    assert city.program.enterprise_annual_cap == Decimal("900000.00")
    assert city.version == 2
