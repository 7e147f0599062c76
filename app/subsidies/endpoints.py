from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy import select

from app.core.deps import SessionDep
from app.core.errors import NotFound, problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag, set_location
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal, OperatorPrincipal
from app.models import SubsidyProgram
from app.subsidies import service
from app.subsidies.schemas import (
    ProgramCreate,
    ProgramOut,
    ProgramUpdate,
    SubsidyQuoteRequest,
    SubsidyQuoteResponse,
)

router = APIRouter(route_class=ContractRoute, tags=["subsidies"])


async def get_program_or_404(
    program_id: str, session: SessionDep, principal: CurrentPrincipal
) -> SubsidyProgram:
    # The key is checked first: without one, 401, never a 404 that tells what exists.
    row = await session.get(SubsidyProgram, program_id)
    if row is None:
        raise NotFound(f"subsidy program {program_id} does not exist")
    return row


ProgramDep = Annotated[SubsidyProgram, Depends(get_program_or_404)]


@router.get("/v1/subsidy-programs", response_model=Page[ProgramOut], responses=problems(401, 422))
async def list_subsidy_programs(
    session: SessionDep, principal: CurrentPrincipal, page: Annotated[PageParams, Depends()]
) -> Page[ProgramOut]:
    """Voucher programs with their rules and this year's `budget_used` and `budget_remaining`."""
    rows, cursor = await paginate(session, select(SubsidyProgram), SubsidyProgram.id, page)
    return Page(items=await service.programs_out(session, list(rows)), next_cursor=cursor)


@router.post(
    "/v1/subsidy-programs",
    response_model=ProgramOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
)
async def create_subsidy_program(
    payload: ProgramCreate,
    session: SessionDep,
    principal: OperatorPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ProgramOut:
    """Add a voucher program (operator); it applies from the next quote when active."""
    row = await service.create_program(session, principal, payload)
    set_etag(response, row.id, row.version)
    set_location(response, f"/v1/subsidy-programs/{row.id}")
    return (await service.programs_out(session, [row]))[0]


@router.get(
    "/v1/subsidy-programs/{program_id}", response_model=ProgramOut, responses=problems(401, 404)
)
async def get_subsidy_program(
    row: ProgramDep, session: SessionDep, principal: CurrentPrincipal, response: Response
) -> ProgramOut:
    """Read one voucher program with this year's budget figures."""
    set_etag(response, row.id, row.version)
    return (await service.programs_out(session, [row]))[0]


@router.patch(
    "/v1/subsidy-programs/{program_id}",
    response_model=ProgramOut,
    responses=problems(401, 403, 404, 412, 422),
)
async def update_subsidy_program(
    payload: ProgramUpdate,
    # The operator check comes first: other keys get 403 whatever the id (never a 404 probe).
    principal: OperatorPrincipal,
    row: ProgramDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> ProgramOut:
    """Change a program field by field, e.g. `status` to activate or retire it (audited)."""
    check_if_match(if_match, row.id, row.version)
    row = await service.update_program(session, principal, row, payload)
    set_etag(response, row.id, row.version)
    return (await service.programs_out(session, [row]))[0]


@router.post(
    "/v1/subsidy-quotes",
    response_model=SubsidyQuoteResponse,
    responses=problems(401, 422),
)
async def create_subsidy_quote(
    payload: SubsidyQuoteRequest, session: SessionDep, principal: CurrentPrincipal
) -> SubsidyQuoteResponse:
    """What-if: the subsidy and net amount for inline facts, under the programs stored now."""
    return await service.what_if(session, payload)
