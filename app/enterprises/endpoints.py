from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.core.deps import SessionDep
from app.core.errors import NotFound, problems
from app.core.etag import IdempotencyKey, IfMatch, check_if_match, set_etag, set_location
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import (
    KEY_OPTIONAL,
    CurrentPrincipal,
    OperatorPrincipal,
    OptionalPrincipal,
)
from app.enterprises import service
from app.enterprises.schemas import (
    CapRelaxationIn,
    CapRelaxationOut,
    EnterpriseCreate,
    EnterpriseCreated,
    EnterpriseOut,
    EnterpriseUpdate,
)
from app.models import CapRelaxation, Enterprise

router = APIRouter(route_class=ContractRoute, tags=["enterprises"])

ProgramIdPath = Annotated[str, Path(min_length=1, max_length=64)]


async def get_enterprise_or_404(
    enterprise_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Enterprise:
    # An enterprise that is not yours is as good as absent: 404, never 403, on reads.
    if not service.can_see(principal, enterprise_id):
        raise NotFound(f"enterprise {enterprise_id} does not exist")
    enterprise = await service.load_enterprise(session, enterprise_id)
    if enterprise is None:
        raise NotFound(f"enterprise {enterprise_id} does not exist")
    return enterprise


EnterpriseDep = Annotated[Enterprise, Depends(get_enterprise_or_404)]


def enterprise_out(enterprise: Enterprise) -> EnterpriseOut:
    return EnterpriseOut.model_validate(
        {
            **{
                c: getattr(enterprise, c)
                for c in (
                    "id",
                    "name",
                    "unified_social_credit_code",
                    "region_code",
                    "is_foundation_model_enterprise",
                    "filed_models",
                    "related_parties",
                    "created_at",
                    "updated_at",
                )
            },
            "relaxed_caps": service.relaxed_caps(enterprise),
        }
    )


@router.get("/v1/enterprises", response_model=Page[EnterpriseOut], responses=problems(401, 422))
async def list_enterprises(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends()],
    region_prefix: Annotated[str | None, Query(pattern=r"^[0-9]{2,6}$")] = None,
    is_foundation_model_enterprise: Annotated[bool | None, Query()] = None,
) -> Page[EnterpriseOut]:
    """List enterprises: all for the operator, only itself for an enterprise key."""
    stmt = select(Enterprise).options(selectinload(Enterprise.cap_relaxations))
    if not principal.is_operator:
        stmt = stmt.where(Enterprise.id == (principal.enterprise_id or ""))
    if region_prefix:
        stmt = stmt.where(Enterprise.region_code.startswith(region_prefix, autoescape=True))
    if is_foundation_model_enterprise is not None:
        stmt = stmt.where(
            Enterprise.is_foundation_model_enterprise == is_foundation_model_enterprise
        )
    rows, cursor = await paginate(session, stmt, Enterprise.id, page)
    return Page(items=[enterprise_out(r) for r in rows], next_cursor=cursor)


@router.post(
    "/v1/enterprises",
    response_model=EnterpriseCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    openapi_extra=KEY_OPTIONAL,
)
async def create_enterprise(
    payload: EnterpriseCreate,
    session: SessionDep,
    principal: OptionalPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> EnterpriseCreated:
    """Create an enterprise (operator), or self-register without a key (key shown once)."""
    enterprise, secret = await service.create_enterprise(session, principal, payload)
    set_etag(response, enterprise.id, enterprise.version)
    set_location(response, f"/v1/enterprises/{enterprise.id}")
    return EnterpriseCreated(**enterprise_out(enterprise).model_dump(), api_key=secret)


@router.get(
    "/v1/enterprises/{enterprise_id}", response_model=EnterpriseOut, responses=problems(401, 404)
)
async def get_enterprise(enterprise: EnterpriseDep, response: Response) -> EnterpriseOut:
    """Read an enterprise with its filed models and relaxed caps."""
    set_etag(response, enterprise.id, enterprise.version)
    return enterprise_out(enterprise)


@router.patch(
    "/v1/enterprises/{enterprise_id}",
    response_model=EnterpriseOut,
    responses=problems(401, 404, 409, 412, 422),
)
async def update_enterprise(
    payload: EnterpriseUpdate,
    enterprise: EnterpriseDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> EnterpriseOut:
    """Change an enterprise's name, region or filed models (the foundation flag: operator)."""
    check_if_match(if_match, enterprise.id, enterprise.version)
    enterprise = await service.update_enterprise(session, principal, enterprise, payload, if_match)
    set_etag(response, enterprise.id, enterprise.version)
    return enterprise_out(enterprise)


@router.get(
    "/v1/enterprises/{enterprise_id}/cap-relaxations",
    response_model=Page[CapRelaxationOut],
    responses=problems(401, 403, 404, 422),
)
async def list_cap_relaxations(
    principal: OperatorPrincipal,
    enterprise: EnterpriseDep,
    page: Annotated[PageParams, Depends()],
    session: SessionDep,
) -> Page[CapRelaxationOut]:
    """An enterprise's operator-granted annual caps, one per program (operator only)."""
    stmt = select(CapRelaxation).where(CapRelaxation.enterprise_id == enterprise.id)
    rows, cursor = await paginate(session, stmt, CapRelaxation.program_id, page)
    return Page(items=[CapRelaxationOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.put(
    "/v1/enterprises/{enterprise_id}/cap-relaxations/{program_id}",
    response_model=CapRelaxationOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def grant_cap_relaxation(
    program_id: ProgramIdPath,
    payload: CapRelaxationIn,
    principal: OperatorPrincipal,
    enterprise: EnterpriseDep,
    session: SessionDep,
) -> CapRelaxationOut:
    """Set a foundation-model enterprise's annual cap under a relaxable program (operator)."""
    relaxation = await service.grant_relaxation(session, principal, enterprise, program_id, payload)
    return CapRelaxationOut.model_validate(relaxation)


@router.delete(
    "/v1/enterprises/{enterprise_id}/cap-relaxations/{program_id}",
    response_model=CapRelaxationOut,
    responses=problems(401, 403, 404),
)
async def revoke_cap_relaxation(
    program_id: ProgramIdPath,
    principal: OperatorPrincipal,
    enterprise: EnterpriseDep,
    session: SessionDep,
) -> CapRelaxationOut:
    """Withdraw a cap relaxation; the program's normal cap applies again (operator)."""
    relaxation = await service.revoke_relaxation(session, principal, enterprise, program_id)
    return CapRelaxationOut.model_validate(relaxation)
