from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from app.core.deps import SessionDep
from app.core.errors import problems
from app.core.pagination import Page, PageParams, paginate
from app.core.routing import ContractRoute
from app.core.security import OperatorPrincipal
from app.models import AuditEntry

router = APIRouter(route_class=ContractRoute, tags=["audit"])


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    at: datetime
    principal_role: str
    principal_id: str | None
    action: str
    resource_type: str
    resource_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


@router.get("/v1/audit-log", response_model=Page[AuditEntryOut], responses=problems(401, 403, 422))
async def list_audit_log(
    session: SessionDep,
    principal: OperatorPrincipal,
    page: Annotated[PageParams, Depends()],
    resource_type: Annotated[str | None, Query(max_length=40)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AuditEntryOut]:
    """Every change of state: who, what, when, before and after (operator only), oldest first."""
    stmt = select(AuditEntry)
    if resource_type:
        stmt = stmt.where(AuditEntry.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditEntry.resource_id == resource_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    rows, cursor = await paginate(session, stmt, AuditEntry.id, page)
    return Page(items=[AuditEntryOut.model_validate(r) for r in rows], next_cursor=cursor)
