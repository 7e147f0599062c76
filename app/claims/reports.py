"""A program's year of claims: the export (one row per claimed order part) and the
report (budget to payment, by district, origin, payer and enterprise).

The export reads the claims in pages of `PAGE` and yields rows as it goes, so a year
of claims is written in bounded memory (CSV streamed; XLSX in openpyxl's write-only
mode, to a temporary file that is then streamed).
"""

import csv
import io
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.claims import chain
from app.claims.service import LIVE_STATUSES
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

PAGE = 500
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


async def export_rows(
    session: AsyncSession, principal: Principal, program_id: str, year: int
) -> AsyncIterator[list[str]]:
    """The export's rows (after `COLUMNS`), claim by claim, part by part."""
    may_report(principal, program_id)
    await program_or_404(session, program_id)
    after = ""
    while True:
        claims = list(
            await session.scalars(
                select(VoucherClaim)
                .where(
                    VoucherClaim.program_id == program_id,
                    VoucherClaim.year == year,
                    VoucherClaim.id > after,
                )
                .order_by(VoucherClaim.id)
                .limit(PAGE)
            )
        )
        if not claims:
            return
        after = claims[-1].id
        for row in await _page_rows(session, claims):
            yield row
        # The page's objects are done with: the session keeps no year of claims.
        session.expunge_all()


async def _page_rows(session: AsyncSession, claims: list[VoucherClaim]) -> list[list[str]]:
    ids = [c.id for c in claims]
    parts = (
        await session.execute(
            select(
                ClaimPart,
                OrderPart,
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
        e.id: e
        for e in await session.scalars(
            select(Enterprise).where(Enterprise.id.in_({c.enterprise_id for c in claims}))
        )
    }
    lists: dict[str, list[str]] = defaultdict(list)
    for provider_id, list_id in await session.execute(
        select(Listing.provider_id, Listing.list_id)
        .where(
            Listing.provider_id.in_({p[8] for p in parts}),
            Listing.ended_at.is_(None),
        )
        .order_by(Listing.list_id)
    ):
        lists[provider_id].append(list_id)
    decisions: dict[str, list[str]] = defaultdict(list)
    for review in await session.scalars(
        select(ClaimReview).where(ClaimReview.claim_id.in_(ids)).order_by(ClaimReview.at)
    ):
        amount = f" {format_money(review.approved_amount)}" if review.approved_amount else ""
        decisions[review.claim_id].append(
            f"{review.decision}{amount} by {review.reviewer_key_id} ({review.reviewer_role}) "
            f"at {review.at.isoformat()}"
        )
    hashes = await chain.latest_hashes(session, ids)
    by_id = {c.id: c for c in claims}
    rows = []
    for claim_part, part, accelerator_id, vendor, model, domestic, name, code, pid in parts:
        claim = by_id[claim_part.claim_id]
        enterprise = enterprises[claim.enterprise_id]
        documents = [d for d in claim.documents if d.get("order_id") == claim_part.order_id]
        hours = int((part.end - part.start).total_seconds() // 3600)
        rows.append(
            [
                claim.id,
                claim.status,
                claim.program_id,
                str(claim.year),
                enterprise.name,
                enterprise.unified_social_credit_code,
                enterprise.region_code,
                name,
                code,
                " ".join(lists.get(pid, [])),
                claim_part.order_id,
                claim_part.part_id,
                f"{vendor} {model} ({accelerator_id})",
                "yes" if domestic else "no",
                str(part.cards),
                str(hours),
                part.start.isoformat(),
                part.end.isoformat(),
                format_money(part.gross_amount),
                format_money(part.executed_amount or ZERO),
                part.rate,
                format_money(claim_part.settled_subsidy),
                format_money(claim_part.approved_amount or ZERO),
                format_money(claim_part.disbursed_amount),
                "; ".join(decisions.get(claim.id, [])),
                " ".join(f"{d['kind']}:{d.get('number') or d.get('reference')}" for d in documents),
                " ".join(d.get("evidence_sha256", "") for d in documents),
                hashes.get(claim.id, ""),
            ]
        )
    return rows


def _csv_line(row: list[str] | tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue().encode("utf-8")


async def csv_stream(rows: AsyncIterator[list[str]]) -> AsyncIterator[bytes]:
    """UTF-8 with a BOM, so that Excel reads the Chinese names right."""
    yield b"\xef\xbb\xbf" + _csv_line(COLUMNS)
    async for row in rows:
        yield _csv_line(row)


async def xlsx_file(rows: AsyncIterator[list[str]]) -> Any:
    """A real workbook, written row by row in openpyxl's write-only mode to a temporary
    file (returned at its start, for streaming)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("claims")
    sheet.append(list(COLUMNS))
    async for row in rows:
        sheet.append(row)
    spool = tempfile.TemporaryFile()
    workbook.save(spool)
    spool.seek(0)
    return spool


def file_chunks(spool: Any, size: int = 1 << 16) -> Iterator[bytes]:
    try:
        while chunk := spool.read(size):
            yield chunk
    finally:
        spool.close()


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
