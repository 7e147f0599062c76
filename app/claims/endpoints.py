from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.convertors import StringConvertor, register_url_convertor

from app.claims import chain, reports, service
from app.claims.schemas import (
    ClaimCreate,
    ClaimEventOut,
    ClaimOut,
    ClaimStatus,
    DisbursementIn,
    DisbursementOut,
    DocumentsUpdate,
    ExportFormat,
    ProgramReport,
    ReviewIn,
)
from app.core.deps import SessionDep, get_db
from app.core.errors import Forbidden, NotFound, problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal, Principal
from app.models import VoucherClaim


class ClaimIdConvertor(StringConvertor):
    """A claim id in a path: any segment but `export`, so that the export's path and a
    claim's never match one request (the routes are matched in traffic order)."""

    regex = r"(?!export(?:/|$))[^/]+"


register_url_convertor("claim_id", ClaimIdConvertor())

router = APIRouter(route_class=ContractRoute, prefix="/v1/voucher-claims", tags=["voucher-claims"])


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


async def _office(principal: CurrentPrincipal) -> Principal:
    """A reviewer or the operator: refused before the query is looked at."""
    if not (principal.is_operator or principal.is_reviewer):
        raise Forbidden("the voucher office's reviewers and the operator export claims")
    return principal


async def _program_office(program_id: str, principal: CurrentPrincipal) -> Principal:
    # Outside its programs a report is not there for a key (as a claim is not).
    if not principal.reviews(program_id):
        raise NotFound(f"no report of program {program_id} for this key")
    return principal


EXPORT_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        **problems(401, 403, 404, 422),
        200: {
            "description": "One row per claimed order part",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                EXPORT_TYPES[ExportFormat.xlsx]: {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
)
async def export_voucher_claims(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(_office)],
    program_id: Annotated[str, Query(max_length=64)],
    year: Annotated[int, Query(ge=2000, le=2100)],
    format: Annotated[ExportFormat, Query()] = ExportFormat.csv,
) -> StreamingResponse:
    """A program's year of claims, one row per claimed order part (CSV with a BOM, or
    XLSX), streamed; each row carries its claim's latest event hash."""
    reports.may_report(principal, program_id)
    filename = f"claims-{program_id}-{year}.{format.value}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    # Refused now (404) rather than mid-stream: the program must exist.
    await reports.program_or_404(session, program_id)
    db = get_db(request)
    encode = reports.xlsx_stream if format is ExportFormat.xlsx else reports.csv_stream

    async def rows() -> AsyncIterator[bytes]:
        # The request's session ends with the endpoint: the stream reads in its own.
        async with db.read_sessionmaker() as own:
            async for chunk in encode(reports.export_pages(own, principal, program_id, year)):
                yield chunk

    return StreamingResponse(rows(), media_type=EXPORT_TYPES[format], headers=headers)


@router.get("/{claim_id:claim_id}", response_model=ClaimOut, responses=problems(401, 404))
async def get_voucher_claim(
    claim_id: str, session: SessionDep, principal: CurrentPrincipal, response: Response
) -> ClaimOut:
    """A claim with its parts, documents, checks, reviews and disbursements."""
    claim = await service.get_claim_for(session, principal, claim_id)
    set_etag(response, claim.id, claim.version)
    return await service.claim_out(session, claim)


@router.patch(
    "/{claim_id:claim_id}",
    response_model=ClaimOut,
    responses=problems(401, 403, 404, 409, 412, 422),
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


@router.post(
    "/{claim_id:claim_id}/submit", response_model=ClaimOut, responses=problems(401, 403, 404, 409)
)
async def submit_voucher_claim(
    claim_id: str, session: SessionDep, principal: CurrentPrincipal
) -> ClaimOut:
    """Submit a returned claim again; its checks are made again as of now."""
    claim = await service.resubmit(session, principal, claim_id)
    return await service.claim_out(session, claim)


@router.post(
    "/{claim_id:claim_id}/review",
    response_model=ClaimOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def review_voucher_claim(
    claim_id: str, payload: ReviewIn, session: SessionDep, principal: CurrentPrincipal
) -> ClaimOut:
    """Approve (all or part), reject or return a claim: a reviewer of its program, never
    the key that filed it; above the program's `dual_review_above`, two reviewer keys."""
    claim = await service.review(session, principal, claim_id, payload)
    return await service.claim_out(session, claim)


@router.post(
    "/{claim_id:claim_id}/disbursements",
    response_model=DisbursementOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def disburse_voucher_claim(
    claim_id: str,
    payload: DisbursementIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DisbursementOut:
    """Record a payment (兑付) of an approved claim, split across the program's payers;
    never more than approved. Send an Idempotency-Key: a retry pays nothing twice."""
    item = await service.disburse(session, principal, claim_id, payload)
    response.headers["Location"] = f"/v1/voucher-claims/{claim_id}/disbursements/{item.id}"
    return DisbursementOut.model_validate(item)


@router.get(
    "/{claim_id:claim_id}/disbursements/{disbursement_id}",
    response_model=DisbursementOut,
    responses=problems(401, 404),
)
async def get_voucher_claim_disbursement(
    claim_id: str, disbursement_id: str, session: SessionDep, principal: CurrentPrincipal
) -> DisbursementOut:
    """One disbursement of a claim, with its split across the program's payers."""
    claim = await service.get_claim_for(session, principal, claim_id)
    return DisbursementOut.model_validate(
        await service.get_disbursement(session, claim, disbursement_id)
    )


@router.get(
    "/{claim_id:claim_id}/events", response_model=list[ClaimEventOut], responses=problems(401, 404)
)
async def list_voucher_claim_events(
    claim_id: str, session: SessionDep, principal: CurrentPrincipal
) -> list[ClaimEventOut]:
    """The claim's events in the chain, with their hashes (recomputable by an auditor)."""
    claim = await service.get_claim_for(session, principal, claim_id)
    events = await chain.claim_events(session, claim.id)
    return [ClaimEventOut.model_validate(chain.event_dict(e)) for e in events]


programs_router = APIRouter(route_class=ContractRoute, tags=["voucher-claims"])


@programs_router.get(
    "/v1/subsidy-programs/{program_id}/report",
    response_model=ProgramReport,
    responses=problems(401, 403, 404, 422),
)
async def get_program_report(
    program_id: str,
    session: SessionDep,
    principal: Annotated[Principal, Depends(_program_office)],
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> ProgramReport:
    """Budget, reserved, settled, claimed, approved, paid and remaining of a program's
    year; by district, by domestic or not, by payer; and the top enterprises."""
    return ProgramReport.model_validate(
        await reports.program_report(session, principal, program_id, year)
    )
