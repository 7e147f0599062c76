"""What pricing reads of the enterprise (`build_context`): its region, its foundation-model
flag and every cap relaxation granted to it, read as a row per relaxation."""

from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from app.core.db import Database
from app.core.timeutil import utcnow
from app.matching import service as matching
from app.models import CapRelaxation, ComputeRequest
from tests.factories import create_enterprise, create_request

HZ_CITY = "hz-city-compute-2024"
BINJIANG = "binjiang-compute-2025"


async def context_of(db: Database, request_id: str) -> matching.MatchContext:
    async with db.sessionmaker() as session:
        request = await session.get(ComputeRequest, request_id)
        assert request is not None
        return await matching.build_context(session, request)


async def test_the_enterprise_and_each_of_its_relaxations(
    client: AsyncClient, db: Database
) -> None:
    enterprise = await create_enterprise(
        client, region_code="330106", is_foundation_model_enterprise=True
    )
    request = await create_request(client, enterprise)
    plain = await context_of(db, request["id"])
    assert plain.enterprise.region_code == "330106"
    assert plain.enterprise.is_foundation_model_enterprise is True
    assert plain.enterprise.relaxed_caps == {}
    assert {p.id for p in plain.programs} >= {HZ_CITY, BINJIANG}

    # Two relaxations: two rows of the read, folded into one enterprise.
    async with db.sessionmaker() as session:
        for program_id, cap in ((HZ_CITY, "20000000.00"), (BINJIANG, "9000000.00")):
            session.add(
                CapRelaxation(
                    enterprise_id=enterprise["id"],
                    program_id=program_id,
                    annual_cap=Decimal(cap),
                    reference=None,
                    granted_at=utcnow(),
                )
            )
        await session.commit()
    relaxed = await context_of(db, request["id"])
    assert relaxed.enterprise.relaxed_caps == {
        HZ_CITY: Decimal("20000000.00"),
        BINJIANG: Decimal("9000000.00"),
    }
    assert relaxed.program_versions == plain.program_versions


async def test_an_enterprise_that_is_not_foundation(client: AsyncClient, db: Database) -> None:
    enterprise: dict[str, Any] = await create_enterprise(client)
    request = await create_request(client, enterprise)
    ctx = await context_of(db, request["id"])
    assert ctx.enterprise.is_foundation_model_enterprise is False
    assert ctx.enterprise.region_code == "330108"
