from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from app.catalog import service
from app.catalog.schemas import AcceleratorCreate, AcceleratorOut, AcceleratorUpdate
from app.core.deps import SessionDep
from app.core.errors import NotFound, problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag, set_location
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal, OperatorPrincipal
from app.models import Accelerator

router = APIRouter(route_class=ContractRoute, prefix="/v1/accelerators", tags=["accelerators"])


async def get_accelerator_or_404(
    accelerator_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Accelerator:
    # The key is checked first: without one, 401, never a 404 that tells what exists.
    acc = await session.get(Accelerator, accelerator_id)
    if acc is None:
        raise NotFound(f"accelerator {accelerator_id} does not exist")
    return acc


AcceleratorDep = Annotated[Accelerator, Depends(get_accelerator_or_404)]


@router.get("", response_model=Page[AcceleratorOut], responses=problems(401, 422))
async def list_accelerators(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    domestic: Annotated[bool | None, Query()] = None,
    vendor: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[AcceleratorOut]:
    """List the accelerator catalog; `domestic` filters by hardware origin."""
    stmt = select(Accelerator)
    if domestic is not None:
        stmt = stmt.where(Accelerator.domestic == domestic)
    if vendor:
        stmt = stmt.where(Accelerator.vendor == vendor)
    rows, cursor = await paginate(session, stmt, Accelerator.id, page)
    return Page(items=[AcceleratorOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "",
    response_model=AcceleratorOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
)
async def create_accelerator(
    payload: AcceleratorCreate,
    session: SessionDep,
    principal: OperatorPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Accelerator:
    """Add an accelerator model to the catalog."""
    acc = await service.create_accelerator(session, principal, payload)
    set_etag(response, acc.id, acc.version)
    set_location(response, f"/v1/accelerators/{acc.id}")
    return acc


@router.get("/{accelerator_id}", response_model=AcceleratorOut, responses=problems(401, 404))
async def get_accelerator(
    acc: AcceleratorDep, principal: CurrentPrincipal, response: Response
) -> Accelerator:
    """Read one accelerator model."""
    set_etag(response, acc.id, acc.version)
    return acc


@router.patch(
    "/{accelerator_id}", response_model=AcceleratorOut, responses=problems(401, 403, 404, 412, 422)
)
async def update_accelerator(
    payload: AcceleratorUpdate,
    # The operator check comes first: other keys get 403 whatever the id (never a 404 probe).
    principal: OperatorPrincipal,
    acc: AcceleratorDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> Accelerator:
    """Correct a catalog entry; a change of `domestic` re-flags every offer on it."""
    acc = await service.lock_accelerator(session, acc)
    check_if_match(if_match, acc.id, acc.version)
    acc = await service.update_accelerator(session, principal, acc, payload)
    set_etag(response, acc.id, acc.version)
    return acc
