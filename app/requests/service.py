from datetime import UTC
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.money import format_money
from app.core.security import Principal
from app.enterprises import service as enterprise_service
from app.models import Accelerator, ComputeRequest, Enterprise
from app.requests.schemas import ComputeRequestCreate, DomesticPreference, RequestStatus


def can_see(principal: Principal, request: ComputeRequest) -> bool:
    return principal.is_operator or (
        principal.enterprise_id is not None and principal.enterprise_id == request.enterprise_id
    )


async def get_request_for(
    session: AsyncSession, principal: Principal, request_id: str
) -> ComputeRequest:
    """The request if this key may see it (its enterprise or the operator); else 404."""
    request = await session.get(ComputeRequest, request_id)
    if request is None or not can_see(principal, request):
        raise NotFound(f"compute request {request_id} does not exist")
    return request


def snapshot(r: ComputeRequest) -> dict[str, Any]:
    return {
        "enterprise_id": r.enterprise_id,
        "accelerator_ids": list(r.accelerator_ids),
        "min_memory_gb": r.min_memory_gb,
        "domestic": r.domestic,
        "cards": r.cards,
        "hours": r.hours,
        "earliest_start": r.earliest_start.isoformat(),
        "latest_start": r.latest_start.isoformat(),
        "purpose": r.purpose,
        "filed_model": r.filed_model,
        "max_net_budget": None if r.max_net_budget is None else format_money(r.max_net_budget),
        "region_prefixes": list(r.region_prefixes),
        "allow_split": r.allow_split,
        "accept_bids": r.accept_bids,
        "bids_close_at": None if r.bids_close_at is None else r.bids_close_at.isoformat(),
        "rank_by": r.rank_by,
        "min_cards_per_node": r.min_cards_per_node,
        "interconnect": r.interconnect,
        "network": r.network,
        "software_stacks": list(r.software_stacks),
        "status": r.status,
    }


async def _owning_enterprise(
    session: AsyncSession, principal: Principal, enterprise_id: str | None
) -> Enterprise:
    if principal.role == "enterprise":
        if enterprise_id is not None and enterprise_id != principal.enterprise_id:
            raise Forbidden(
                "an enterprise key creates compute requests for its own enterprise only"
            )
        enterprise_id = principal.enterprise_id
    elif not principal.is_operator:
        raise Forbidden("only enterprises and the operator create compute requests")
    if enterprise_id is None:
        raise Unprocessable.field(["body", "enterprise_id"], "the operator must name enterprise_id")
    # Locked so that concurrent posts of one enterprise count its open requests one at a time.
    enterprise = await session.scalar(
        select(Enterprise).where(Enterprise.id == enterprise_id).with_for_update()
    )
    if enterprise is None:
        raise Unprocessable.field(["body", "enterprise_id"], f"no enterprise {enterprise_id}")
    return enterprise


async def _check_accelerators(session: AsyncSession, payload: ComputeRequestCreate) -> None:
    if not payload.accelerator_ids:
        return
    rows = (
        await session.execute(
            select(Accelerator.id, Accelerator.domestic, Accelerator.memory_gb).where(
                Accelerator.id.in_(payload.accelerator_ids)
            )
        )
    ).all()
    known = {acc_id: (domestic, memory) for acc_id, domestic, memory in rows}
    for index, acc_id in enumerate(payload.accelerator_ids):
        if acc_id not in known:
            raise Unprocessable.field(
                ["body", "accelerator_ids", index],
                f"unknown accelerator {acc_id!r}; see GET /v1/accelerators",
            )
    # A request that no accelerator it names could ever serve is a mistake worth saying.
    fitting = [
        acc_id
        for acc_id, (domestic, memory) in known.items()
        if (payload.domestic != DomesticPreference.required or domestic)
        and (payload.min_memory_gb is None or memory >= payload.min_memory_gb)
    ]
    if not fitting:
        wants = []
        if payload.domestic == DomesticPreference.required:
            wants.append("domestic hardware")
        if payload.min_memory_gb is not None:
            wants.append(f"at least {payload.min_memory_gb} GB of memory")
        raise Unprocessable.field(
            ["body", "accelerator_ids"],
            f"none of accelerator_ids has {' and '.join(wants)}; nothing could ever match",
        )


async def create_request(
    session: AsyncSession,
    principal: Principal,
    payload: ComputeRequestCreate,
    max_open: int,
) -> ComputeRequest:
    enterprise = await _owning_enterprise(session, principal, payload.enterprise_id)
    await _check_accelerators(session, payload)
    if payload.filed_model is not None:
        numbers = enterprise_service.filed_model_numbers(enterprise)
        if payload.filed_model not in numbers:
            known = ", ".join(sorted(numbers)) or "none"
            raise Unprocessable.field(
                ["body", "filed_model"],
                f"{payload.filed_model!r} is not one of enterprise {enterprise.id}'s filed models "
                f"(filed: {known}); add it with PATCH /v1/enterprises/{enterprise.id}",
            )
    open_count = await session.scalar(
        select(func.count())
        .select_from(ComputeRequest)
        .where(
            ComputeRequest.enterprise_id == enterprise.id,
            ComputeRequest.status == RequestStatus.open.value,
        )
    )
    if (open_count or 0) >= max_open:
        raise Conflict(
            f"enterprise {enterprise.id} already has {open_count} open compute requests, "
            f"the most allowed; cancel some (DELETE /v1/compute-requests/{{id}}) first"
        )
    request = ComputeRequest(
        id=new_id("req"),
        enterprise_id=enterprise.id,
        accelerator_ids=list(payload.accelerator_ids),
        min_memory_gb=payload.min_memory_gb,
        domestic=payload.domestic.value,
        cards=payload.cards,
        hours=payload.hours,
        # In UTC, as stored: the answer to this POST equals any later GET.
        earliest_start=payload.earliest_start.astimezone(UTC),
        latest_start=payload.latest_start.astimezone(UTC),
        purpose=payload.purpose.value,
        filed_model=payload.filed_model,
        max_net_budget=payload.max_net_budget,
        region_prefixes=list(payload.region_prefixes),
        allow_split=payload.allow_split,
        accept_bids=payload.accept_bids,
        bids_close_at=(payload.bids_close_at or payload.latest_start).astimezone(UTC)
        if payload.accept_bids
        else None,
        rank_by=payload.rank_by.value,
        min_cards_per_node=payload.min_cards_per_node,
        interconnect=None if payload.interconnect is None else payload.interconnect.value,
        network=None if payload.network is None else payload.network.value,
        software_stacks=[s.value for s in payload.software_stacks],
        status=RequestStatus.open.value,
    )
    session.add(request)
    await session.flush()
    await audit.record(
        session,
        principal,
        "compute_request.created",
        "compute_request",
        request.id,
        after=snapshot(request),
    )
    return request


async def cancel_request(
    session: AsyncSession, principal: Principal, request: ComputeRequest
) -> ComputeRequest:
    # Lock the row so two cancels cannot both succeed.
    await session.execute(
        select(ComputeRequest.id).where(ComputeRequest.id == request.id).with_for_update()
    )
    await session.refresh(request, attribute_names=["status"])
    if request.status == RequestStatus.cancelled.value:
        raise Conflict(f"compute request {request.id} is already cancelled")
    before = {"status": request.status}
    request.status = RequestStatus.cancelled.value
    await session.flush()
    await audit.record(
        session,
        principal,
        "compute_request.cancelled",
        "compute_request",
        request.id,
        before=before,
        after={"status": request.status},
    )
    return request


def list_statement(
    principal: Principal,
    enterprise_id: str | None = None,
    status: RequestStatus | None = None,
) -> Select[ComputeRequest]:
    if principal.role == "provider":
        raise Forbidden("compute requests are listed by their enterprise and the operator")
    stmt = select(ComputeRequest)
    if not principal.is_operator:
        stmt = stmt.where(ComputeRequest.enterprise_id == (principal.enterprise_id or ""))
    if enterprise_id is not None:
        stmt = stmt.where(ComputeRequest.enterprise_id == enterprise_id)
    if status is not None:
        stmt = stmt.where(ComputeRequest.status == status.value)
    return stmt
