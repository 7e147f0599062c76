"""The console's claims pages: the review queue, a claim with its orders, documents,
checks and events, and the review and disbursement forms.

Each form calls the claims service with the signed-in key's principal, so the
console decides nothing the API would not: the same object-level rules (a reviewer
sees and decides its programs' claims only; the filer's key never reviews), the same
refusals. A form carries the claim's version: a second submission of a form already
acted on (a double click, a back button) is refused, never applied twice.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import and_, or_, select

from app.claims import chain
from app.claims import service as claims
from app.claims.schemas import DisbursementIn, ReviewIn
from app.console import i18n
from app.console import session as auth
from app.console.endpoints import csrf_refused, language, link_maker, not_found, render, to_login
from app.core.deps import SessionDep
from app.core.errors import AppError
from app.core.timeutil import today_shanghai
from app.evidence import service as evidence
from app.models import Enterprise, Order, OrderPart, Provider, VoucherClaim

router = APIRouter(prefix="/console", include_in_schema=False)
STATUSES = ("submitted", "awaiting_second_review", "returned", "approved", "paid", "rejected")
# Claims per page of the queue.
PAGE = 50


@router.get("/claims", response_class=HTMLResponse)
async def console_claims(
    request: Request,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32)] = "submitted",
    program_id: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    user = await auth.current_user(request, session)
    if user is None:
        return to_login(request)
    wanted = status if status in STATUSES else None
    stmt = claims.list_statement(user.principal, status=wanted, program_id=program_id or None)
    if after:
        # The next page starts after the last claim of this one (keyset: a claim decided
        # meanwhile leaves the queue without shifting the pages).
        anchor = await session.scalar(
            select(VoucherClaim.submitted_at).where(VoucherClaim.id == after)
        )
        if anchor is not None:
            stmt = stmt.where(
                or_(
                    VoucherClaim.submitted_at > anchor,
                    and_(VoucherClaim.submitted_at == anchor, VoucherClaim.id > after),
                )
            )
    # The queue: oldest first, so that nobody waits behind later filings.
    found = list(
        (
            await session.scalars(
                stmt.order_by(VoucherClaim.submitted_at, VoucherClaim.id).limit(PAGE + 1)
            )
        ).all()
    )
    rows, more = found[:PAGE], len(found) > PAGE
    names = await _enterprise_names(session, {c.enterprise_id for c in rows})
    return render(
        request,
        "claims.html",
        user=user,
        rows=rows,
        names=names,
        status=wanted,
        statuses=STATUSES,
        program_id=program_id or None,
        first_page=not after,
        next_after=rows[-1].id if more else None,
    )


async def _enterprise_names(session: Any, ids: set[str]) -> dict[str, tuple[str, str]]:
    if not ids:
        return {}
    found = await session.execute(
        select(Enterprise.id, Enterprise.name, Enterprise.unified_social_credit_code).where(
            Enterprise.id.in_(sorted(ids))
        )
    )
    return {i: (n, c) for i, n, c in found}


async def _claim_page(
    request: Request,
    session: Any,
    user: auth.ConsoleUser,
    claim_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        claim = await claims.get_claim_for(session, user.principal, claim_id)
    except AppError:
        return not_found(request, user)
    out = await claims.claim_out(session, claim)
    names = await _enterprise_names(session, {claim.enterprise_id})
    part_ids = [p.part_id for p in out.parts]
    parts = {
        p.id: p
        for p in (await session.scalars(select(OrderPart).where(OrderPart.id.in_(part_ids)))).all()
    }
    orders = {
        o.id: o
        for o in (
            await session.scalars(select(Order).where(Order.id.in_(list(out.order_ids))))
        ).all()
    }
    providers = dict(
        (
            await session.execute(
                select(Provider.id, Provider.name).where(
                    Provider.id.in_(sorted({p.provider_id for p in out.parts}))
                )
            )
        ).all()
    )
    events = [
        {**chain.event_dict(e), "local_at": _instant(e.at)}
        for e in await chain.claim_events(session, claim.id)
    ]
    return render(
        request,
        "claim.html",
        user=user,
        claim=out,
        enterprise=names.get(claim.enterprise_id, (claim.enterprise_id, "")),
        parts=parts,
        orders=orders,
        providers=providers,
        events=events,
        error=error,
        may_decide=user.may_see(claim.program_id)
        and claim.status in ("submitted", "awaiting_second_review"),
        may_pay=user.may_see(claim.program_id) and claim.status == "approved",
        left_to_pay=(claim.approved_amount or Decimal(0)) - claim.disbursed_amount,
        today=today_shanghai(),
        status_code=status_code,
    )


@router.get("/claims/{claim_id}", response_class=HTMLResponse)
async def console_claim(request: Request, session: SessionDep, claim_id: str) -> Response:
    user = await auth.current_user(request, session)
    if user is None:
        return to_login(request)
    return await _claim_page(request, session, user, claim_id)


def _instant(at: Any) -> datetime | None:
    """An event's time for people (shown in Asia/Shanghai); the hashed text stays as is."""
    if isinstance(at, datetime):
        return at
    try:
        return datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError:
        return None


def _problem_text(error: AppError) -> str:
    return str(getattr(error, "detail", None) or error)


async def _guarded(
    request: Request, session: Any, claim_id: str, csrf_token: str, version: int
) -> tuple[auth.ConsoleUser | None, Response | None]:
    """The signed-in user of a form post, or the response that refuses it."""
    user = await auth.current_user(request, session)
    if user is None:
        return None, to_login(request)
    if not (auth.same_origin(request) and auth.csrf_ok(request, user, csrf_token)):
        return None, csrf_refused(request, user)
    try:
        claim = await claims.get_claim_for(session, user.principal, claim_id)
    except AppError:
        return None, not_found(request, user)
    if claim.version != version:
        return None, await _claim_page(
            request,
            session,
            user,
            claim_id,
            error=i18n_text(request, "claim.stale"),
            status_code=409,
        )
    return user, None


def i18n_text(request: Request, key: str) -> str:
    return i18n.text(language(request), key)


@router.post("/claims/{claim_id}/review")
async def console_review(
    request: Request,
    session: SessionDep,
    claim_id: str,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    version: Annotated[int, Form()] = 0,
    decision: Annotated[str, Form(max_length=16)] = "",
    approved_amount: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    user, refused = await _guarded(request, session, claim_id, csrf_token, version)
    if refused is not None or user is None:
        return refused or to_login(request)
    body: dict[str, Any] = {"decision": decision, "reason": reason.strip() or None}
    if decision == "approve" and approved_amount.strip():
        body["approved_amount"] = approved_amount.strip()
    try:
        payload = ReviewIn.model_validate(body)
        await claims.review(session, user.principal, claim_id, payload)
    except ValidationError as invalid:
        await session.rollback()
        return await _claim_page(
            request, session, user, claim_id, error=_validation_text(invalid), status_code=422
        )
    except AppError as error:
        await session.rollback()
        return await _claim_page(
            request, session, user, claim_id, error=_problem_text(error), status_code=error.status
        )
    return RedirectResponse(
        link_maker(language(request))(f"/console/claims/{claim_id}"), status_code=303
    )


@router.post("/claims/{claim_id}/disbursements")
async def console_disburse(
    request: Request,
    session: SessionDep,
    claim_id: str,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    version: Annotated[int, Form()] = 0,
    amount: Annotated[str, Form(max_length=32)] = "",
    paid_on: Annotated[str, Form(max_length=10)] = "",
    bank_reference: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user, refused = await _guarded(request, session, claim_id, csrf_token, version)
    if refused is not None or user is None:
        return refused or to_login(request)
    try:
        payload = DisbursementIn.model_validate(
            {"amount": amount.strip(), "paid_on": paid_on.strip(), "bank_reference": bank_reference}
        )
        await claims.disburse(session, user.principal, claim_id, payload)
    except ValidationError as invalid:
        await session.rollback()
        return await _claim_page(
            request, session, user, claim_id, error=_validation_text(invalid), status_code=422
        )
    except AppError as error:
        await session.rollback()
        return await _claim_page(
            request, session, user, claim_id, error=_problem_text(error), status_code=error.status
        )
    return RedirectResponse(
        link_maker(language(request))(f"/console/claims/{claim_id}"), status_code=303
    )


def _validation_text(invalid: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in invalid.errors())


@router.get("/evidence/{evidence_id}")
async def console_evidence(request: Request, session: SessionDep, evidence_id: str) -> Response:
    """An evidence file, for a reviewer of a claim citing it (the API's own rule)."""
    user = await auth.current_user(request, session)
    if user is None:
        return to_login(request)
    try:
        found = await evidence.get_for(session, user.principal, evidence_id)
    except AppError:
        return not_found(request, user)
    content = await evidence.content_of(session, found)
    return Response(
        content,
        media_type=found.media_type,
        # nosniff comes from the security headers every response carries.
        headers={"Content-Disposition": "attachment"},
    )
