from typing import Annotated

from fastapi import APIRouter, Query

from app.core.deps import SessionDep
from app.core.errors import NotFound, problems
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.core.timeutil import today_shanghai
from app.enterprises import service as enterprise_service
from app.ledger import service
from app.ledger.schemas import VoucherUsage

router = APIRouter(route_class=ContractRoute, tags=["enterprises"])


@router.get(
    "/v1/enterprises/{enterprise_id}/voucher-usage",
    response_model=VoucherUsage,
    responses=problems(401, 404, 422),
)
async def get_voucher_usage(
    enterprise_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="Default: this year")] = None,
) -> VoucherUsage:
    """Per program: this enterprise's cap, reserved, settled and remaining voucher amounts."""
    enterprise = await enterprise_service.load_enterprise(session, enterprise_id)
    if enterprise is None or not enterprise_service.can_see(principal, enterprise_id):
        raise NotFound(f"enterprise {enterprise_id} does not exist")
    return await service.voucher_usage(session, enterprise, year or today_shanghai().year)
