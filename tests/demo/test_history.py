"""The demo market's past: written through the services on their days, it leaves
claims in every status, a chain that verifies, invariants that hold, and a year of
burn for the console."""

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from app.claims import chain
from app.claims.schemas import ClaimStatus
from app.config import Settings
from app.console import service as console_service
from app.console.session import ConsoleUser
from app.core.db import Database
from app.core.security import Principal
from app.demo import load_demo_market, rotate_demo_reviewer_key
from app.evidence.service import sniff
from app.ledger import service as ledger
from app.models import Disbursement, Evidence, Order, VoucherClaim
from app.ops.invariants import check
from tests.factories import bearer

# A fixed "now" (10:00 in Hangzhou on 5 December 2026): the demo's past is the year
# before it, whatever day the test runs.
NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
OPERATOR_PRINCIPAL = Principal(role="operator", key_id="key_demo")


async def test_the_demo_past_has_claims_in_every_status_and_everything_holds(
    db: Database, settings: Settings, client: Any
) -> None:
    summary = await load_demo_market(
        db, providers=12, offers_per_provider=2, enterprises=6, now=NOW, settings=settings
    )
    assert "its past year: 2 computing centres and 37 enterprises, 92 orders" in summary
    async with db.sessionmaker() as session:
        claims = list(await session.scalars(select(VoucherClaim)))
        assert {c.status for c in claims} == {s.value for s in ClaimStatus}
        # Approved in part, and paid in part.
        assert any(c.approved_amount is not None and c.approved_amount < c.amount for c in claims)
        assert any(
            c.status == "approved" and 0 < c.disbursed_amount < (c.approved_amount or 0)
            for c in claims
        )
        assert any(c.status == "paid" and c.round == 2 for c in claims)  # returned, resubmitted
        assert (await session.scalar(select(func.count()).select_from(Disbursement))) >= 5
        # Binjiang claims last year's orders, this year; the city this year's.
        assert {(c.program_id, c.year) for c in claims} == {
            ("binjiang-compute-2025", 2025),
            ("hz-city-compute-2024", 2026),
        }
        assert all(c.submitted_at.year == 2026 for c in claims)
        # The chain holds over every event, and every invariant.
        count, broken = await chain.verify(session)
        assert broken is None
        assert count >= 2 * len(claims)  # each filed, most decided
        assert await check(session) == []
        # The evidence is real PDF and PNG files.
        files = (await session.execute(select(Evidence.media_type, Evidence.content))).all()
        assert {media_type for media_type, _ in files} == {"application/pdf", "image/png"}
        assert all(sniff(content) == media_type for media_type, content in files)
        # Settled orders for Binjiang in both years; orders placed on their days.
        for year in (2025, 2026):
            balance = (await ledger.program_balances(session, year, ["binjiang-compute-2025"]))[
                "binjiang-compute-2025"
            ]
            assert balance.settled > 0, year
        first = await session.scalar(select(func.min(Order.created_at)))
        assert first is not None
        assert first.year == 2025
        # The city's budget burns out before the year does.
        user = ConsoleUser(OPERATOR_PRINCIPAL, "key_demo", None, "s", None)
        views = {
            v.id: v
            for v in await console_service.programs_overview(session, user, 2026, date(2026, 12, 5))
        }
        city = views["hz-city-compute-2024"]
        assert city.settled > 0
        assert city.burn is not None
        assert len(set(city.burn.weekly)) > 20  # it grows week by week
        assert city.burn.meets_budget_on is not None
        assert date(2026, 12, 5) <= city.burn.meets_budget_on <= date(2026, 12, 31)
    # Loaded once: a second load with --if-empty leaves it alone.
    again = await load_demo_market(db, if_empty=True, now=NOW, settings=settings)
    assert "skipped" in again
    # The Binjiang office's key sees its program's claims only.
    rotated = await rotate_demo_reviewer_key(db)
    assert rotated is not None
    listed = await client.get("/v1/voucher-claims?limit=100", headers=bearer(rotated[0]))
    assert listed.status_code == 200, listed.text
    seen = {c["program_id"] for c in listed.json()["items"]}
    assert seen == {"binjiang-compute-2025"}


async def test_no_reviewer_key_without_the_past(db: Database) -> None:
    assert await rotate_demo_reviewer_key(db) is None
