"""The audit log: who changed what, when, before and after."""

from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import current_request_id
from app.core.ids import new_id
from app.core.security import Principal
from app.core.timeutil import utcnow
from app.models import AuditEntry

TABLE = cast(Table, AuditEntry.__table__)
# A plain INSERT in the caller's transaction: an entry is never changed, so the
# session has nothing to track (and no unit of work to run for it).
_INSERT = insert(TABLE)


async def record(
    session: AsyncSession,
    principal: Principal | None,
    action: str,
    resource_type: str,
    resource_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await (await session.connection()).execute(
        _INSERT,
        row(principal, action, resource_type, resource_id, before=before, after=after),
    )


def row(
    principal: Principal | None,
    action: str,
    resource_type: str,
    resource_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An entry's row, for a caller that writes it along with rows of its own."""
    return {
        "id": new_id("aud"),
        "at": utcnow(),
        "principal_role": principal.role if principal else "anonymous",
        "principal_id": principal.subject_id if principal else None,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "before": before,
        "after": after,
        "request_id": current_request_id(),
    }
