from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.claims import chain, service
from app.claims.schemas import (
    ClaimCreate,
    ClaimEventOut,
    ClaimOut,
    ClaimStatus,
    DisbursementIn,
    DisbursementOut,
    DocumentsUpdate,
    ReviewIn,
)
from app.core.deps import SessionDep
from app.core.errors import problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag
from app.core.pagination import Page, PageParams, paginate
from app.core.security import CurrentPrincipal
from app.models import VoucherClaim

router = APIRouter(prefix="/v1/voucher-claims", tags=["voucher-claims"])


@router.get("", response_model=Page[ClaimOut], responses=problems(401, 403, 422))
async def list_voucher_claims(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    program_id: Annotated[str | None, Query(max_length=64)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    status: Annotated[ClaimStatus | None, Query()] = None,
    enterprise_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[ClaimOut]:
    """Claims, oldest first: a reviewer sees its programs', an enterprise its own."""
    stmt = service.list_statement(
        principal,
        program_id=program_id,
        year=year,
        status=status.value if status is not None else None,
        enterprise_id=enterprise_id,
    )
    rows, cursor = await paginate(session, stmt, VoucherClaim.id, page)
    return Page(items=await service.claims_out(session, rows), next_cursor=cursor)


@router.post(
    "",
    response_model=ClaimOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def file_voucher_claim(
    payload: ClaimCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ClaimOut:
    """File a claim (申领) for settled orders; the amount is computed here. Refused (409,
    `reason`): `claims_not_open`, `claims_closed`, `not_settled`, `already_claimed`."""
    claim = await service.file_claim(session, principal, payload)
    response.headers["Location"] = f"/v1/voucher-claims/{claim.id}"
    set_etag(response, claim.id, claim.version)
    return await service.claim_out(session, claim)


@router.get("/{claim_id}", response_model=ClaimOut, responses=problems(401, 404))
async def get_voucher_claim(
    claim_id: str, session: SessionDep, principal: CurrentPrincipal, response: Response
) -> ClaimOut:
    """A claim with its parts, documents, checks, reviews and disbursements."""
    claim = await service.get_claim_for(session, principal, claim_id)
    set_etag(response, claim.id, claim.version)
    return await service.claim_out(session, claim)


@router.patch(
    "/{claim_id}", response_model=ClaimOut, responses=problems(401, 403, 404, 409, 412, 422)
)
async def update_voucher_claim(
    claim_id: str,
    payload: DocumentsUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> ClaimOut:
    """Replace a returned claim's documents (the enterprise that filed it)."""
    current = await service.get_claim_for(session, principal, claim_id)
    check_if_match(if_match, current.id, current.version)
    claim = await service.update_documents(session, principal, claim_id, payload.documents)
    set_etag(response, claim.id, claim.version)
    return await service.claim_out(session, claim)


@router.post("/{claim_id}/submit", response_model=ClaimOut, responses=problems(401, 403, 404, 409))
async def submit_voucher_claim(
    claim_id: str, session: SessionDep, principal: CurrentPrincipal
) -> ClaimOut:
    """Submit a returned claim again; its checks are made again as of now."""
    claim = await service.resubmit(session, principal, claim_id)
    return await service.claim_out(session, claim)


@router.post(
    "/{claim_id}/review", response_model=ClaimOut, responses=problems(401, 403, 404, 409, 422)
)
async def review_voucher_claim(
    claim_id: str, payload: ReviewIn, session: SessionDep, principal: CurrentPrincipal
) -> ClaimOut:
    """Approve (all or part), reject or return a claim: a reviewer of its program, never
    the key that filed it; above the program's `dual_review_above`, two reviewer keys."""
    claim = await service.review(session, principal, claim_id, payload)
    return await service.claim_out(session, claim)


@router.post(
    "/{claim_id}/disbursements",
    response_model=DisbursementOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def disburse_voucher_claim(
    claim_id: str,
    payload: DisbursementIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> DisbursementOut:
    """Record a payment (兑付) of an approved claim, split across the program's payers;
    never more than approved. Send an Idempotency-Key: a retry pays nothing twice."""
    item = await service.disburse(session, principal, claim_id, payload)
    return DisbursementOut.model_validate(item)


@router.get("/{claim_id}/events", response_model=list[ClaimEventOut], responses=problems(401, 404))
async def list_voucher_claim_events(
    claim_id: str, session: SessionDep, principal: CurrentPrincipal
) -> list[ClaimEventOut]:
    """The claim's events in the chain, with their hashes (recomputable by an auditor)."""
    claim = await service.get_claim_for(session, principal, claim_id)
    events = await chain.claim_events(session, claim.id)
    return [ClaimEventOut.model_validate(chain.event_dict(e)) for e in events]
