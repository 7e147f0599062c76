"""A program's year of claims: the export (one row per claimed order part) and the
report (budget to payment, by district, origin, payer and enterprise).

The export reads the claims in pages of `PAGE` and yields them as it goes, so a year
of claims is written in bounded memory: CSV a chunk a page, XLSX zipped as it is
written (`app.core.xlsx`), both streamed from the first page.
"""

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.claims import chain
from app.claims.service import LIVE_STATUSES
from app.core import xlsx
from app.core.errors import Forbidden, NotFound
from app.core.money import ZERO, format_money
from app.core.security import Principal
from app.ledger import service as ledger
from app.models import (
    Accelerator,
    ClaimPart,
    ClaimReview,
    Disbursement,
    Enterprise,
    Listing,
    Offer,
    OrderPart,
    Provider,
    SubsidyProgram,
    VoucherClaim,
)

# Claims a page (about 2,000 claimed parts in a year of 20-part claims): each page's
# rows and its chunk are held at once, so the page bounds the export's memory (500 grew
# the server by ~140 MB on 100,000 parts; 100 by ~35 MB, in the same time).
PAGE = 100
COLUMNS = (
    "claim_id",
    "claim_status",
    "program_id",
    "year",
    "enterprise_name",
    "enterprise_credit_code",
    "enterprise_region",
    "provider_name",
    "provider_credit_code",
    "provider_lists",
    "order_id",
    "part_id",
    "accelerator",
    "domestic",
    "cards",
    "hours",
    "window_start",
    "window_end",
    "gross_amount",
    "executed_amount",
    "rate",
    "subsidy_settled",
    "subsidy_approved",
    "subsidy_paid",
    "decisions",
    "document_numbers",
    "evidence_sha256",
    "latest_event_hash",
)


def may_report(principal: Principal, program_id: str) -> None:
    if not principal.reviews(program_id):
        raise Forbidden("only the program's reviewers and the operator read its claims report")


async def program_or_404(session: AsyncSession, program_id: str) -> SubsidyProgram:
    row = await session.get(SubsidyProgram, program_id)
    if row is None:
        raise NotFound(f"subsidy program {program_id} does not exist")
    return row


async def export_pages(
    session: AsyncSession, principal: Principal, program_id: str, year: int
) -> AsyncIterator[list[list[str]]]:
    """The export's rows (after `COLUMNS`), a page of claims at a time, claim by claim,
    part by part."""
    may_report(principal, program_id)
    await program_or_404(session, program_id)
    after = ""
    while True:
        claims = (
            await session.execute(
                select(
                    VoucherClaim.id,
                    VoucherClaim.status,
                    VoucherClaim.program_id,
                    VoucherClaim.year,
                    VoucherClaim.enterprise_id,
                    VoucherClaim.documents,
                )
                .where(
                    VoucherClaim.program_id == program_id,
                    VoucherClaim.year == year,
                    VoucherClaim.id > after,
                )
                .order_by(VoucherClaim.id)
                .limit(PAGE)
            )
        ).all()
        if not claims:
            return
        after = claims[-1].id
        yield await _page_rows(session, claims)


async def export_rows(
    session: AsyncSession, principal: Principal, program_id: str, year: int
) -> AsyncIterator[list[str]]:
    """The export's rows one by one (`export_pages`)."""
    async for page in export_pages(session, principal, program_id, year):
        for row in page:
            yield row


@dataclass(frozen=True)
class _Documents:
    """A claim's documents of one order, as the export's two columns show them."""

    numbers: str
    sha256: str


def _documents_by_order(documents: list[dict[str, Any]]) -> dict[str, _Documents]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for document in documents:
        grouped[document.get("order_id", "")].append(document)
    return {
        order_id: _Documents(
            " ".join(f"{d['kind']}:{d.get('number') or d.get('reference')}" for d in found),
            " ".join(d.get("evidence_sha256", "") for d in found),
        )
        for order_id, found in grouped.items()
    }


async def _page_rows(session: AsyncSession, claims: Sequence[Row[Any]]) -> list[list[str]]:
    """The rows of a page of claims: a few queries of the columns shown, whatever the
    page's size (no ORM objects: a year of claims is 100,000 parts)."""
    ids = [c.id for c in claims]
    parts = (
        await session.execute(
            select(
                ClaimPart.claim_id,
                ClaimPart.order_id,
                ClaimPart.part_id,
                ClaimPart.settled_subsidy,
                ClaimPart.approved_amount,
                ClaimPart.disbursed_amount,
                OrderPart.cards,
                OrderPart.start,
                OrderPart.end,
                OrderPart.gross_amount,
                OrderPart.executed_amount,
                OrderPart.rate,
                Offer.accelerator_id,
                Accelerator.vendor,
                Accelerator.model,
                Offer.domestic,
                Provider.name,
                Provider.unified_social_credit_code,
                Provider.id,
            )
            .join(OrderPart, OrderPart.id == ClaimPart.part_id)
            .join(Offer, Offer.id == OrderPart.offer_id)
            .join(Accelerator, Accelerator.id == Offer.accelerator_id)
            .join(Provider, Provider.id == ClaimPart.provider_id)
            .where(ClaimPart.claim_id.in_(ids))
            .order_by(ClaimPart.claim_id, ClaimPart.id)
        )
    ).all()
    enterprises = {
        row.id: row
        for row in await session.execute(
            select(
                Enterprise.id,
                Enterprise.name,
                Enterprise.unified_social_credit_code,
                Enterprise.region_code,
            ).where(Enterprise.id.in_({c.enterprise_id for c in claims}))
        )
    }
    lists: dict[str, list[str]] = defaultdict(list)
    for provider_id, list_id in await session.execute(
        select(Listing.provider_id, Listing.list_id)
        .where(
            Listing.provider_id.in_({p[18] for p in parts}),
            Listing.ended_at.is_(None),
        )
        .order_by(Listing.list_id)
    ):
        lists[provider_id].append(list_id)
    decisions: dict[str, list[str]] = defaultdict(list)
    for claim_id, decision, approved, key_id, role, at in await session.execute(
        select(
            ClaimReview.claim_id,
            ClaimReview.decision,
            ClaimReview.approved_amount,
            ClaimReview.reviewer_key_id,
            ClaimReview.reviewer_role,
            ClaimReview.at,
        )
        .where(ClaimReview.claim_id.in_(ids))
        .order_by(ClaimReview.at)
    ):
        amount = f" {format_money(approved)}" if approved else ""
        decisions[claim_id].append(f"{decision}{amount} by {key_id} ({role}) at {at.isoformat()}")
    hashes = await chain.latest_hashes(session, ids)
    by_id = {c.id: c for c in claims}
    documents = {c.id: _documents_by_order(c.documents) for c in claims}
    shown = {claim_id: "; ".join(found) for claim_id, found in decisions.items()}
    provider_lists = {pid: " ".join(found) for pid, found in lists.items()}
    none = _Documents("", "")
    rows = []
    for (
        claim_id,
        order_id,
        part_id,
        settled,
        approved,
        disbursed,
        cards,
        start,
        end,
        gross,
        executed,
        rate,
        accelerator_id,
        vendor,
        model,
        domestic,
        name,
        code,
        pid,
    ) in parts:
        claim = by_id[claim_id]
        enterprise = enterprises[claim.enterprise_id]
        docs = documents[claim_id].get(order_id, none)
        rows.append(
            [
                claim_id,
                claim.status,
                claim.program_id,
                str(claim.year),
                enterprise.name,
                enterprise.unified_social_credit_code,
                enterprise.region_code,
                name,
                code,
                provider_lists.get(pid, ""),
                order_id,
                part_id,
                f"{vendor} {model} ({accelerator_id})",
                "yes" if domestic else "no",
                str(cards),
                str(int((end - start).total_seconds() // 3600)),
                start.isoformat(),
                end.isoformat(),
                format_money(gross),
                format_money(executed or ZERO),
                rate,
                format_money(settled),
                format_money(approved or ZERO),
                format_money(disbursed),
                shown.get(claim_id, ""),
                docs.numbers,
                docs.sha256,
                hashes.get(claim_id, ""),
            ]
        )
    return rows


async def csv_stream(pages: AsyncIterator[list[list[str]]]) -> AsyncIterator[bytes]:
    """UTF-8 with a BOM, so that Excel reads the Chinese names right; a chunk a page
    (a few MB), not a chunk a row: each chunk costs a pass through the ASGI stack."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")
    async for page in pages:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(page)
        yield buffer.getvalue().encode("utf-8")


async def xlsx_stream(pages: AsyncIterator[list[list[str]]]) -> AsyncIterator[bytes]:
    """A real workbook (one sheet, `claims`), streamed as it is zipped: the sheet's XML
    is written a page at a time (`app.core.xlsx`)."""
    async for chunk in xlsx.stream("claims", COLUMNS, pages):
        yield chunk


# --------------------------------------------------------------------------- the report


def _money(value: Decimal | None) -> str:
    return format_money(value or ZERO)


async def program_report(
    session: AsyncSession, principal: Principal, program_id: str, year: int
) -> dict[str, Any]:
    """Budget, reserved, settled, claimed, approved, paid and remaining of a program's
    year; the same by district (the enterprise's region), by domestic or not, by payer;
    and the top enterprises by approved subsidy."""
    may_report(principal, program_id)
    program = await program_or_404(session, program_id)
    balance = (await ledger.program_balances(session, year, [program_id])).get(
        program_id, ledger.Balance()
    )
    claims = list(
        (
            await session.execute(
                select(
                    VoucherClaim.id,
                    VoucherClaim.status,
                    VoucherClaim.amount,
                    VoucherClaim.approved_amount,
                    VoucherClaim.disbursed_amount,
                    Enterprise.id,
                    Enterprise.name,
                    Enterprise.region_code,
                )
                .join(Enterprise, Enterprise.id == VoucherClaim.enterprise_id)
                .where(VoucherClaim.program_id == program_id, VoucherClaim.year == year)
            )
        ).all()
    )

    def blank() -> dict[str, Decimal]:
        return {"claimed": ZERO, "approved": ZERO, "paid": ZERO}

    totals = blank()
    districts: dict[str, dict[str, Decimal]] = defaultdict(blank)
    enterprises: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(blank)
    for _, status, amount, approved, paid, enterprise_id, name, region in claims:
        figures = {
            "claimed": amount if status in LIVE_STATUSES else ZERO,
            "approved": approved or ZERO,
            "paid": paid,
        }
        for bucket in (totals, districts[region], enterprises[(enterprise_id, name)]):
            for key, value in figures.items():
                bucket[key] += value
    origins: dict[str, dict[str, Decimal]] = defaultdict(blank)
    for domestic, settled, approved, paid, live in await session.execute(
        select(
            Offer.domestic,
            ClaimPart.settled_subsidy,
            ClaimPart.approved_amount,
            ClaimPart.disbursed_amount,
            ClaimPart.live,
        )
        .join(VoucherClaim, VoucherClaim.id == ClaimPart.claim_id)
        .join(OrderPart, OrderPart.id == ClaimPart.part_id)
        .join(Offer, Offer.id == OrderPart.offer_id)
        .where(VoucherClaim.program_id == program_id, VoucherClaim.year == year)
    ):
        bucket = origins["domestic" if domestic else "non_domestic"]
        bucket["claimed"] += settled if live else ZERO
        bucket["approved"] += approved or ZERO
        bucket["paid"] += paid
    payers: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for (splits,) in await session.execute(
        select(Disbursement.splits)
        .join(VoucherClaim, VoucherClaim.id == Disbursement.claim_id)
        .where(VoucherClaim.program_id == program_id, VoucherClaim.year == year)
    ):
        for split in splits:
            payers[split["payer"]] += Decimal(split["amount"])
    count = await session.scalar(
        select(func.count())
        .select_from(VoucherClaim)
        .where(VoucherClaim.program_id == program_id, VoucherClaim.year == year)
    )
    budget = program.annual_budget

    def shown(figures: dict[str, Decimal]) -> dict[str, str]:
        return {key: _money(value) for key, value in figures.items()}

    top = sorted(enterprises.items(), key=lambda item: (-item[1]["approved"], item[0][0]))[:10]
    return {
        "program_id": program_id,
        "year": year,
        "claims": count or 0,
        "budget": None if budget is None else _money(budget),
        "reserved": _money(balance.reserved),
        "settled": _money(balance.settled),
        **shown(totals),
        "remaining": None if budget is None else _money(max(ZERO, budget - balance.used)),
        "by_district": [
            {"region_code": region, **shown(f)} for region, f in sorted(districts.items())
        ],
        "by_origin": [{"origin": o, **shown(f)} for o, f in sorted(origins.items())],
        "by_payer": [
            {"payer": payer, "paid": _money(amount)} for payer, amount in sorted(payers.items())
        ],
        "top_enterprises": [
            {"enterprise_id": eid, "name": name, **shown(f)} for (eid, name), f in top
        ],
    }
