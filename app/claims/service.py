"""Voucher claims: filing (申领), review (评审), disbursement (兑付).

Every function takes (session, principal, ...) and never commits: the request's
session commits once, as everywhere else. A claim's money moves in the voucher
ledger (`approve`, `disburse`, and `release` of what was not approved), and every
change of a claim is an event of the chain (`app.claims.chain`).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.claims import chain
from app.claims.schemas import (
    ClaimCreate,
    ClaimOut,
    DisbursementIn,
    DocumentIn,
    DocumentKind,
    ReviewDecision,
    ReviewIn,
)
from app.core import timeutil
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.money import FEN, ZERO, format_money, round_down
from app.core.security import Principal
from app.enterprises import service as enterprise_service
from app.ledger import service as ledger
from app.models import (
    ClaimEvidence,
    ClaimPart,
    ClaimReview,
    Disbursement,
    Enterprise,
    Evidence,
    LedgerEntry,
    Order,
    OrderPart,
    Provider,
    SubsidyProgram,
    VoucherClaim,
)
from app.subsidies import service as subsidy_service
from app.subsidies.rules import EnterpriseFacts, Program, effective_cap, related

LIVE_STATUSES = ("submitted", "awaiting_second_review", "approved", "paid", "returned")
APPROVED_STATUSES = ("approved", "paid")


class ClaimRefused(Conflict):
    """A 409 with the rule that refused the claim in `reason` (claims.md)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)


def today() -> date:
    """Today in Asia/Shanghai (the claims window is counted in policy days)."""
    return timeutil.today_shanghai()


# --------------------------------------------------------------------------- reading


def can_see(principal: Principal, claim: VoucherClaim) -> bool:
    return principal.reviews(claim.program_id) or (
        principal.enterprise_id is not None and principal.enterprise_id == claim.enterprise_id
    )


async def get_claim_for(
    session: AsyncSession, principal: Principal, claim_id: str, *, lock: bool = False
) -> VoucherClaim:
    stmt = select(VoucherClaim).where(VoucherClaim.id == claim_id)
    if lock:
        # Decisions on one claim are serial: the second waits and sees the first.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    claim = await session.scalar(stmt)
    if claim is None or not can_see(principal, claim):
        raise NotFound(f"voucher claim {claim_id} does not exist")
    return claim


def list_statement(
    principal: Principal,
    *,
    program_id: str | None = None,
    year: int | None = None,
    status: str | None = None,
    enterprise_id: str | None = None,
) -> Select[VoucherClaim]:
    stmt = select(VoucherClaim)
    if principal.is_reviewer:
        stmt = stmt.where(VoucherClaim.program_id.in_(principal.program_ids))
    elif principal.enterprise_id is not None:
        stmt = stmt.where(VoucherClaim.enterprise_id == principal.enterprise_id)
    elif not principal.is_operator:
        raise Forbidden("enterprises read their claims; reviewers their programs'")
    if program_id is not None:
        stmt = stmt.where(VoucherClaim.program_id == program_id)
    if year is not None:
        stmt = stmt.where(VoucherClaim.year == year)
    if status is not None:
        stmt = stmt.where(VoucherClaim.status == status)
    if enterprise_id is not None:
        stmt = stmt.where(VoucherClaim.enterprise_id == enterprise_id)
    return stmt


async def claims_out(session: AsyncSession, claims: Sequence[VoucherClaim]) -> list[ClaimOut]:
    """Claims as the API answers them, with their parts, reviews and disbursements."""
    ids = [c.id for c in claims]
    parts: dict[str, list[ClaimPart]] = defaultdict(list)
    reviews: dict[str, list[ClaimReview]] = defaultdict(list)
    paid: dict[str, list[Disbursement]] = defaultdict(list)
    if ids:
        for part in await session.scalars(
            select(ClaimPart).where(ClaimPart.claim_id.in_(ids)).order_by(ClaimPart.id)
        ):
            parts[part.claim_id].append(part)
        for review in await session.scalars(
            select(ClaimReview).where(ClaimReview.claim_id.in_(ids)).order_by(ClaimReview.id)
        ):
            reviews[review.claim_id].append(review)
        for item in await session.scalars(
            select(Disbursement).where(Disbursement.claim_id.in_(ids)).order_by(Disbursement.id)
        ):
            paid[item.claim_id].append(item)
    return [
        ClaimOut.model_validate(
            {
                **{name: getattr(c, name) for name in _CLAIM_FIELDS},
                "parts": parts[c.id],
                "reviews": reviews[c.id],
                "disbursements": paid[c.id],
            },
            from_attributes=True,
        )
        for c in claims
    ]


_CLAIM_FIELDS = (
    "id",
    "program_id",
    "year",
    "enterprise_id",
    "status",
    "amount",
    "approved_amount",
    "disbursed_amount",
    "order_ids",
    "documents",
    "checks",
    "round",
    "filed_by_key_id",
    "submitted_at",
    "created_at",
    "updated_at",
    "version",
)


async def claim_out(session: AsyncSession, claim: VoucherClaim) -> ClaimOut:
    return (await claims_out(session, [claim]))[0]


# --------------------------------------------------------------------------- filing


async def _program(session: AsyncSession, program_id: str) -> Program:
    row = await session.get(SubsidyProgram, program_id)
    if row is None:
        raise Unprocessable.field(["body", "program_id"], f"no subsidy program {program_id}")
    return subsidy_service.to_program(row)


def check_window(program: Program, year: int, on: date) -> None:
    opens, closes = program.claims_window(year)
    if on < opens:
        raise ClaimRefused(
            "claims_not_open",
            f"claims for {year} under {program.id} open on {opens.isoformat()}",
        )
    if closes is not None and on > closes:
        raise ClaimRefused(
            "claims_closed",
            f"claims for {year} under {program.id} closed on {closes.isoformat()}",
        )


@dataclass(frozen=True)
class ClaimedPart:
    order: Order
    part: OrderPart
    settled: Decimal


async def _claimable_parts(
    session: AsyncSession, enterprise_id: str, program_id: str, year: int, order_ids: list[str]
) -> list[ClaimedPart]:
    orders = {
        o.id: o
        for o in await session.scalars(
            select(Order).where(Order.id.in_(order_ids)).options(selectinload(Order.parts))
        )
    }
    for index, order_id in enumerate(order_ids):
        order = orders.get(order_id)
        if order is None or order.enterprise_id != enterprise_id:
            raise Unprocessable.field(
                ["body", "order_ids", index], f"order {order_id} does not exist"
            )
    # Each part's year and settled subsidy, as the ledger holds them (the year of the
    # contract date, as reserved; the settle entries of the order's completion).
    years: dict[str, int] = {}
    settled: dict[str, Decimal] = defaultdict(lambda: ZERO)
    rows = await session.execute(
        select(LedgerEntry.part_id, LedgerEntry.kind, LedgerEntry.year, LedgerEntry.amount).where(
            LedgerEntry.order_id.in_(order_ids),
            LedgerEntry.program_id == program_id,
            LedgerEntry.claim_id.is_(None),
        )
    )
    for part_id, kind, entry_year, amount in rows:
        years[part_id] = entry_year
        if kind == "settle":
            settled[part_id] += amount
    claimed: list[ClaimedPart] = []
    for order_id in order_ids:
        order = orders[order_id]
        if order.status != "completed":
            raise ClaimRefused("not_settled", f"order {order_id} is {order.status}, not completed")
        mine = [p for p in order.parts if p.program_id == program_id and years.get(p.id) == year]
        if not mine:
            raise ClaimRefused(
                "not_settled", f"order {order_id} has no part settled under {program_id} in {year}"
            )
        claimed += [ClaimedPart(order, p, settled[p.id]) for p in mine]
    return claimed


async def _refuse_claimed(session: AsyncSession, part_ids: list[str]) -> None:
    taken = (
        await session.execute(
            select(ClaimPart.part_id, ClaimPart.claim_id).where(
                ClaimPart.part_id.in_(part_ids), ClaimPart.live.is_(True)
            )
        )
    ).first()
    if taken is not None:
        raise ClaimRefused(
            "already_claimed", f"order part {taken[0]} is already in claim {taken[1]}"
        )


async def _check_documents(
    session: AsyncSession,
    enterprise_id: str,
    documents: Sequence[DocumentIn],
    parts: Sequence[ClaimedPart],
) -> dict[str, Evidence]:
    """Each document names a claimed order and evidence the enterprise may cite: its own,
    or a provider's of those orders (a delivery record). Answers the evidence by id."""
    orders = {c.order.id for c in parts}
    owners = {enterprise_id} | {c.part.provider_id for c in parts}
    wanted = sorted({d.evidence_id for d in documents})
    found = {
        e.id: e for e in await session.scalars(select(Evidence).where(Evidence.id.in_(wanted)))
    }
    for index, document in enumerate(documents):
        if document.order_id not in orders:
            raise Unprocessable.field(
                ["body", "documents", index, "order_id"],
                f"order {document.order_id} is not one of this claim's orders",
            )
        evidence = found.get(document.evidence_id)
        if evidence is None or evidence.owner_id not in owners:
            raise Unprocessable.field(
                ["body", "documents", index, "evidence_id"],
                f"evidence {document.evidence_id} does not exist",
            )
    return found


async def _approved_totals(
    session: AsyncSession, program_id: str, year: int, enterprise_id: str
) -> tuple[Decimal, Decimal]:
    """(the enterprise's, the program's) approved subsidy in `year` under `program_id`."""
    rows = await session.execute(
        select(LedgerEntry.enterprise_id, func.sum(LedgerEntry.amount))
        .where(
            LedgerEntry.program_id == program_id,
            LedgerEntry.year == year,
            LedgerEntry.kind == "approve",
            LedgerEntry.claim_id.is_not(None),
        )
        .group_by(LedgerEntry.enterprise_id)
    )
    mine, everyone = ZERO, ZERO
    for who, amount in rows:
        everyone += amount or ZERO
        if who == enterprise_id:
            mine += amount or ZERO
    return mine, everyone


async def compute_checks(
    session: AsyncSession,
    program: Program,
    enterprise: Enterprise,
    year: int,
    parts: Sequence[ClaimedPart],
    documents: Sequence[DocumentIn],
    amount: Decimal,
) -> list[dict[str, Any]]:
    """The named checks a reviewer decides on (claims.md "A claim")."""
    orders: dict[str, Order] = {c.order.id: c.order for c in parts}
    by_order: dict[str, list[DocumentIn]] = defaultdict(list)
    for document in documents:
        by_order[document.order_id].append(document)

    def cover(kind: DocumentKind) -> dict[str, Any]:
        short = []
        for order_id, order in orders.items():
            total = sum((d.amount or ZERO for d in by_order[order_id] if d.kind is kind), ZERO)
            executed = order.executed_amount or ZERO
            if total < executed:
                short.append(f"{order_id}: {format_money(total)} < {format_money(executed)}")
        name = "invoices" if kind is DocumentKind.invoice else "payments"
        return {
            "check": f"{name}_cover",
            "passed": not short,
            "detail": (
                f"{name} of each order cover its executed amount"
                if not short
                else f"{name} short of the executed amount: " + "; ".join(short)
            ),
        }

    missing = []
    for order_id in orders:
        kinds = {d.kind for d in by_order[order_id]}
        lacking = [
            k.value
            for k in (DocumentKind.contract, DocumentKind.invoice, DocumentKind.payment)
            if k not in kinds
        ]
        if lacking:
            missing.append(f"{order_id} lacks {', '.join(lacking)}")

    provider_ids = sorted({c.part.provider_id for c in parts})
    providers = list(await session.scalars(select(Provider).where(Provider.id.in_(provider_ids))))
    related_to = [
        p.id
        for p in providers
        if related(
            enterprise.unified_social_credit_code,
            enterprise.related_parties or [],
            p.unified_social_credit_code,
            p.related_parties or [],
        )
    ]
    approved_mine, approved_all = await _approved_totals(session, program.id, year, enterprise.id)
    cap = effective_cap(
        program,
        EnterpriseFacts(
            region_code=enterprise.region_code,
            is_foundation_model_enterprise=enterprise.is_foundation_model_enterprise,
            relaxed_caps=enterprise_service.relaxed_caps(enterprise),
        ),
    )
    budget = program.annual_budget
    return [
        cover(DocumentKind.invoice),
        cover(DocumentKind.payment),
        {
            "check": "documents_complete",
            "passed": not missing,
            "detail": "each order has a contract, an invoice and a payment"
            if not missing
            else "; ".join(missing),
        },
        {
            "check": "related_parties",
            "passed": not related_to,
            "detail": "the enterprise is related to no provider of these orders, as of now"
            if not related_to
            else "related parties (关联方) as of now: " + ", ".join(related_to),
        },
        {
            "check": "within_cap",
            "passed": cap is None or approved_mine + amount <= cap,
            "detail": "no enterprise cap"
            if cap is None
            else f"approved {format_money(approved_mine)} + {format_money(amount)} "
            f"of the cap {format_money(cap)}",
        },
        {
            "check": "within_budget",
            "passed": budget is None or approved_all + amount <= budget,
            "detail": "no program budget"
            if budget is None
            else f"approved {format_money(approved_all)} + {format_money(amount)} "
            f"of the budget {format_money(budget)}",
        },
    ]


def _documents_data(
    documents: Sequence[DocumentIn], evidence: dict[str, Evidence]
) -> list[dict[str, Any]]:
    return [{**d.stored(), "evidence_sha256": evidence[d.evidence_id].sha256} for d in documents]


async def _enterprise(session: AsyncSession, enterprise_id: str) -> Enterprise:
    enterprise = await enterprise_service.load_enterprise(session, enterprise_id)
    if enterprise is None:
        raise NotFound(f"enterprise {enterprise_id} does not exist")
    return enterprise


async def file_claim(
    session: AsyncSession, principal: Principal, payload: ClaimCreate
) -> VoucherClaim:
    if principal.enterprise_id is None:
        raise Forbidden("an enterprise files its own claims")
    program = await _program(session, payload.program_id)
    # The program's window first, then the orders (claims.md).
    check_window(program, payload.year, today())
    parts = await _claimable_parts(
        session, principal.enterprise_id, program.id, payload.year, payload.order_ids
    )
    await _refuse_claimed(session, [c.part.id for c in parts])
    evidence = await _check_documents(session, principal.enterprise_id, payload.documents, parts)
    enterprise = await _enterprise(session, principal.enterprise_id)
    amount = sum((c.settled for c in parts), ZERO)
    now = timeutil.utcnow()
    claim = VoucherClaim(
        id=new_id("clm"),
        program_id=program.id,
        year=payload.year,
        enterprise_id=enterprise.id,
        status="submitted",
        amount=amount,
        approved_amount=None,
        disbursed_amount=ZERO,
        order_ids=list(payload.order_ids),
        documents=_documents_data(payload.documents, evidence),
        checks=await compute_checks(
            session, program, enterprise, payload.year, parts, payload.documents, amount
        ),
        filed_by_key_id=principal.key_id,
        submitted_at=now,
        round=1,
        created_at=now,
        updated_at=now,
        version=1,
    )
    try:
        # The unique index on live parts decides between two filings of the same
        # orders at once: the second is refused as already claimed.
        async with session.begin_nested():
            session.add(claim)
            await session.flush()
            session.add_all(
                ClaimPart(
                    claim_id=claim.id,
                    order_id=c.order.id,
                    part_id=c.part.id,
                    provider_id=c.part.provider_id,
                    settled_subsidy=c.settled,
                    approved_amount=None,
                    disbursed_amount=ZERO,
                    live=True,
                )
                for c in parts
            )
            session.add_all(ClaimEvidence(claim_id=claim.id, evidence_id=e) for e in evidence)
            await session.flush()
    except IntegrityError:
        raise ClaimRefused(
            "already_claimed", "an order part of this claim was claimed at the same time"
        ) from None
    await chain.append(
        session,
        principal,
        claim.id,
        "submitted",
        {
            "program_id": program.id,
            "year": payload.year,
            "enterprise_id": enterprise.id,
            "amount": format_money(amount),
            "order_ids": list(payload.order_ids),
            "part_ids": [c.part.id for c in parts],
            "documents": claim.documents,
            "checks": claim.checks,
        },
    )
    return claim


# --------------------------------------------------------------------------- resubmission


def _own_returned(principal: Principal, claim: VoucherClaim) -> None:
    if principal.enterprise_id != claim.enterprise_id:
        raise Forbidden("only the enterprise that filed a claim changes or resubmits it")
    if claim.status != "returned":
        raise Conflict(
            f"claim {claim.id} is {claim.status}; only a returned claim changes",
            reason="claim_status",
        )


async def _parts_of(session: AsyncSession, claim: VoucherClaim) -> list[ClaimPart]:
    return list(
        await session.scalars(
            select(ClaimPart).where(ClaimPart.claim_id == claim.id).order_by(ClaimPart.id)
        )
    )


async def _claimed_parts(session: AsyncSession, claim: VoucherClaim) -> list[ClaimedPart]:
    rows = await _parts_of(session, claim)
    orders = {
        o.id: o
        for o in await session.scalars(
            select(Order).where(Order.id.in_(claim.order_ids)).options(selectinload(Order.parts))
        )
    }
    by_id = {p.id: p for o in orders.values() for p in o.parts}
    return [ClaimedPart(orders[r.order_id], by_id[r.part_id], r.settled_subsidy) for r in rows]


async def update_documents(
    session: AsyncSession, principal: Principal, claim_id: str, documents: list[DocumentIn]
) -> VoucherClaim:
    claim = await get_claim_for(session, principal, claim_id, lock=True)
    _own_returned(principal, claim)
    parts = await _claimed_parts(session, claim)
    evidence = await _check_documents(session, claim.enterprise_id, documents, parts)
    claim.documents = _documents_data(documents, evidence)
    await session.execute(delete(ClaimEvidence).where(ClaimEvidence.claim_id == claim.id))
    session.add_all(ClaimEvidence(claim_id=claim.id, evidence_id=e) for e in evidence)
    claim.version += 1
    await session.flush()
    return claim


async def resubmit(session: AsyncSession, principal: Principal, claim_id: str) -> VoucherClaim:
    claim = await get_claim_for(session, principal, claim_id, lock=True)
    _own_returned(principal, claim)
    program = await _program(session, claim.program_id)
    parts = await _claimed_parts(session, claim)
    documents = [
        DocumentIn.model_validate({k: v for k, v in d.items() if k != "evidence_sha256"})
        for d in claim.documents
    ]
    enterprise = await _enterprise(session, claim.enterprise_id)
    # Related parties and the cap are checked again as they are now.
    claim.checks = await compute_checks(
        session, program, enterprise, claim.year, parts, documents, claim.amount
    )
    claim.status = "submitted"
    claim.round += 1
    claim.submitted_at = timeutil.utcnow()
    claim.version += 1
    await session.flush()
    await chain.append(
        session,
        principal,
        claim.id,
        "resubmitted",
        {"round": claim.round, "documents": claim.documents, "checks": claim.checks},
    )
    return claim


# --------------------------------------------------------------------------- review


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`total` shared in proportion to `weights`, each share at most its weight: rounded
    down to the fen, then the remaining fen one by one to the first that have room."""
    whole = sum(weights, ZERO)
    if whole == ZERO:
        return [ZERO for _ in weights]
    shares = [min(w, round_down(total * w / whole)) for w in weights]
    left = total - sum(shares, ZERO)
    while left > ZERO:
        moved = False
        for i, w in enumerate(weights):
            if left > ZERO and shares[i] < w:
                shares[i] += FEN
                left -= FEN
                moved = True
        if not moved:
            raise ValueError("total exceeds the weights")
    return shares


def split_by_funding(
    amount: Decimal, payers: Sequence[tuple[str, Decimal]]
) -> list[dict[str, str]]:
    """A disbursement across the program's payers: each share rounded down to the fen,
    the remainder to the first payer (claims.md)."""
    amounts = [round_down(amount * share) for _, share in payers]
    amounts[0] += amount - sum(amounts, ZERO)
    return [
        {"payer": payer, "share": format_money(share), "amount": format_money(value)}
        for (payer, share), value in zip(payers, amounts, strict=True)
    ]


def _entry(claim: VoucherClaim, part: ClaimPart, kind: str, amount: Decimal) -> LedgerEntry:
    return ledger.entry(
        enterprise_id=claim.enterprise_id,
        program_id=claim.program_id,
        year=claim.year,
        order_id=part.order_id,
        part_id=part.part_id,
        kind=kind,
        amount=amount,
        claim_id=claim.id,
    )


def _may_review(principal: Principal, claim: VoucherClaim) -> None:
    if not principal.reviews(claim.program_id):
        raise Forbidden("only a reviewer of the claim's program, or the operator, reviews it")
    if principal.key_id is not None and principal.key_id == claim.filed_by_key_id:
        raise Forbidden("the key that filed a claim never reviews it")


async def review(
    session: AsyncSession, principal: Principal, claim_id: str, payload: ReviewIn
) -> VoucherClaim:
    claim = await get_claim_for(session, principal, claim_id, lock=True)
    _may_review(principal, claim)
    if claim.status not in ("submitted", "awaiting_second_review"):
        raise Conflict(
            f"claim {claim.id} is {claim.status}; only a submitted claim is reviewed",
            reason="claim_status",
        )
    program = await _program(session, claim.program_id)
    approved: Decimal | None = None
    if payload.decision is ReviewDecision.approve:
        approved = claim.amount if payload.approved_amount is None else payload.approved_amount
        if approved == ZERO and claim.amount > ZERO:
            raise Unprocessable.field(
                ["body", "approved_amount"], "approve more than 0.00, or reject the claim"
            )
        if approved > claim.amount:
            raise Unprocessable.field(
                ["body", "approved_amount"],
                f"approved_amount {format_money(approved)} is above the claimed "
                f"{format_money(claim.amount)}",
            )
    first: ClaimReview | None = None
    if claim.status == "awaiting_second_review":
        first = await session.scalar(
            select(ClaimReview)
            .where(
                ClaimReview.claim_id == claim.id,
                ClaimReview.round == claim.round,
                ClaimReview.decision == "approve",
            )
            .order_by(ClaimReview.at.desc())
            .limit(1)
        )
        if first is not None and first.reviewer_key_id == principal.key_id:
            raise Conflict(
                "the second approval must come from another reviewer key",
                reason="same_reviewer",
            )
    session.add(
        ClaimReview(
            id=new_id("rev"),
            claim_id=claim.id,
            round=claim.round,
            decision=payload.decision.value,
            approved_amount=approved,
            reason=payload.reason,
            reviewer_key_id=principal.key_id or "unknown",
            reviewer_role=principal.role,
            at=timeutil.utcnow(),
        )
    )
    parts = await _parts_of(session, claim)
    entries: list[LedgerEntry] = []
    if payload.decision is ReviewDecision.approve:
        assert approved is not None
        needs_two = (
            program.dual_review_above is not None and claim.amount > program.dual_review_above
        )
        if needs_two and first is None:
            claim.status = "awaiting_second_review"
        else:
            # Two approvals: the lesser amount, which both reviewers agreed to.
            if first is not None and first.approved_amount is not None:
                approved = min(approved, first.approved_amount)
            claim.status = "approved"
            claim.approved_amount = approved
            shares = allocate(approved, [p.settled_subsidy for p in parts])
            for part, share in zip(parts, shares, strict=True):
                part.approved_amount = share
                if share > 0:
                    entries.append(_entry(claim, part, "approve", share))
                if part.settled_subsidy - share > 0:
                    entries.append(_entry(claim, part, "release", part.settled_subsidy - share))
    elif payload.decision is ReviewDecision.reject:
        claim.status = "rejected"
        for part in parts:
            part.live = False
            part.approved_amount = ZERO
            if part.settled_subsidy > 0:
                entries.append(_entry(claim, part, "release", part.settled_subsidy))
    else:
        claim.status = "returned"
    claim.version += 1
    await session.flush()
    if entries:
        await ledger.append(session, entries)
    await chain.append(
        session,
        principal,
        claim.id,
        "returned" if payload.decision is ReviewDecision.return_ else "reviewed",
        {
            "decision": payload.decision.value,
            "approved_amount": None if approved is None else format_money(approved),
            "reason": payload.reason,
            "round": claim.round,
            "status": claim.status,
        },
    )
    return claim


# --------------------------------------------------------------------------- disbursement


async def disburse(
    session: AsyncSession, principal: Principal, claim_id: str, payload: DisbursementIn
) -> Disbursement:
    claim = await get_claim_for(session, principal, claim_id, lock=True)
    if not principal.reviews(claim.program_id):
        raise Forbidden("only a reviewer of the claim's program, or the operator, pays it")
    if claim.status != "approved" or claim.approved_amount is None:
        raise Conflict(
            f"claim {claim.id} is {claim.status}; only an approved claim is paid",
            reason="claim_status",
        )
    left = claim.approved_amount - claim.disbursed_amount
    if payload.amount > left:
        raise Conflict(
            f"{format_money(payload.amount)} is more than the {format_money(left)} "
            "approved and not yet paid",
            reason="above_approved",
        )
    program = await _program(session, claim.program_id)
    parts = await _parts_of(session, claim)
    # Paid against the parts in their order, each up to what was approved for it.
    entries: list[LedgerEntry] = []
    remaining = payload.amount
    for part in parts:
        room = (part.approved_amount or ZERO) - part.disbursed_amount
        take = min(room, remaining)
        if take > 0:
            part.disbursed_amount += take
            remaining -= take
            entries.append(_entry(claim, part, "disburse", take))
    item = Disbursement(
        id=new_id("dsb"),
        claim_id=claim.id,
        amount=payload.amount,
        paid_on=payload.paid_on,
        bank_reference=payload.bank_reference,
        splits=split_by_funding(payload.amount, program.payers),
        by_key_id=principal.key_id or "unknown",
        at=timeutil.utcnow(),
    )
    session.add(item)
    claim.disbursed_amount += payload.amount
    if claim.disbursed_amount == claim.approved_amount:
        claim.status = "paid"
    claim.version += 1
    await session.flush()
    await ledger.append(session, entries)
    await chain.append(
        session,
        principal,
        claim.id,
        "disbursed",
        {
            "disbursement_id": item.id,
            "amount": format_money(payload.amount),
            "paid_on": payload.paid_on.isoformat(),
            "bank_reference": payload.bank_reference,
            "splits": item.splits,
            "status": claim.status,
        },
    )
    return item


async def get_disbursement(
    session: AsyncSession, claim: VoucherClaim, disbursement_id: str
) -> Disbursement:
    item = await session.get(Disbursement, disbursement_id)
    if item is None or item.claim_id != claim.id:
        raise NotFound(f"disbursement {disbursement_id} does not exist")
    return item
