from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.auth import service as auth_service
from app.core import audit
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.etag import check_if_match
from app.core.ids import new_id
from app.core.money import format_money
from app.core.security import Principal
from app.core.timeutil import utcnow
from app.enterprises.schemas import (
    FOUNDATION_FLAG_IS_OPERATORS,
    CapRelaxationIn,
    EnterpriseCreate,
    EnterpriseUpdate,
    FiledModel,
)
from app.models import CapRelaxation, ComputeRequest, Enterprise, SubsidyProgram
from app.providers import service as provider_service


def snapshot(e: Enterprise) -> dict[str, Any]:
    return {
        "name": e.name,
        "region_code": e.region_code,
        "is_foundation_model_enterprise": e.is_foundation_model_enterprise,
        "filed_models": list(e.filed_models),
        "related_parties": list(e.related_parties or []),
    }


async def load_enterprise(session: AsyncSession, enterprise_id: str) -> Enterprise | None:
    return await session.scalar(
        select(Enterprise)
        .where(Enterprise.id == enterprise_id)
        .options(selectinload(Enterprise.cap_relaxations))
    )


def can_see(principal: Principal, enterprise_id: str) -> bool:
    return principal.is_operator or principal.enterprise_id == enterprise_id


def relaxed_caps(enterprise: Enterprise) -> dict[str, Decimal]:
    """program id -> operator-granted annual cap (needs `cap_relaxations` loaded)."""
    return {r.program_id: r.annual_cap for r in enterprise.cap_relaxations}


def filed_model_numbers(enterprise: Enterprise) -> frozenset[str]:
    return frozenset(str(m["filing_number"]) for m in enterprise.filed_models)


def _stored_models(models: list[FiledModel]) -> list[dict[str, Any]]:
    return [
        {"filing_number": m.filing_number, "name": m.name, "filed_on": m.filed_on.isoformat()}
        for m in models
    ]


def _refuse_flag_unless_operator(principal: Principal | None, sent: bool | None) -> None:
    # null is the same as leaving the field out; any value is the operator's to set.
    if sent is not None and (principal is None or not principal.is_operator):
        raise Unprocessable.field(
            ["body", "is_foundation_model_enterprise"], FOUNDATION_FLAG_IS_OPERATORS
        )


async def create_enterprise(
    session: AsyncSession, principal: Principal | None, payload: EnterpriseCreate
) -> tuple[Enterprise, str | None]:
    """Operator creates; anyone without a key self-registers and receives a key once."""
    if principal is not None and not principal.is_operator:
        raise Forbidden("only the operator creates enterprises; register without a key instead")
    _refuse_flag_unless_operator(principal, payload.is_foundation_model_enterprise)
    await _ensure_code_free(session, payload.unified_social_credit_code)
    enterprise = Enterprise(
        id=new_id("ent"),
        name=payload.name,
        unified_social_credit_code=payload.unified_social_credit_code,
        region_code=payload.region_code,
        is_foundation_model_enterprise=bool(payload.is_foundation_model_enterprise),
        filed_models=_stored_models(payload.filed_models),
        related_parties=list(payload.related_parties or []),
        version=1,
    )
    session.add(enterprise)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("an enterprise with this unified social credit code exists") from None
    secret = None
    if principal is None:
        _, secret = await auth_service.issue_key(
            session, role="enterprise", enterprise_id=enterprise.id, name="self-registration"
        )
    await audit.record(
        session,
        principal,
        "enterprise.created",
        "enterprise",
        enterprise.id,
        after=snapshot(enterprise),
    )
    loaded = await load_enterprise(session, enterprise.id)
    assert loaded is not None
    return loaded, secret


async def _ensure_code_free(session: AsyncSession, code: str) -> None:
    taken = await session.scalar(
        select(Enterprise.id).where(Enterprise.unified_social_credit_code == code)
    )
    if taken is not None:
        raise Conflict(f"an enterprise with unified social credit code {code} already exists")


async def _lock(session: AsyncSession, enterprise: Enterprise) -> None:
    # Serialise changes of one enterprise (flag, filed models, relaxations, new requests).
    await session.execute(
        select(Enterprise.id).where(Enterprise.id == enterprise.id).with_for_update()
    )


async def update_enterprise(
    session: AsyncSession,
    principal: Principal,
    enterprise: Enterprise,
    payload: EnterpriseUpdate,
    if_match: str | None = None,
) -> Enterprise:
    _refuse_flag_unless_operator(principal, payload.is_foundation_model_enterprise)
    changes = payload.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        return enterprise
    await _lock(session, enterprise)
    # Checked again under the lock: two writers holding the same ETag cannot both win.
    await session.refresh(enterprise, attribute_names=["version", "is_foundation_model_enterprise"])
    check_if_match(if_match, enterprise.id, enterprise.version)
    if payload.filed_models is not None:
        await _ensure_no_open_request_loses_its_model(session, enterprise, payload.filed_models)
    if payload.is_foundation_model_enterprise is False:
        await _ensure_no_relaxations(session, enterprise)
    if payload.related_parties is not None:
        enterprise.related_parties = provider_service.related_parties_after(
            principal, enterprise.related_parties, payload.related_parties
        )
    before = snapshot(enterprise)
    if payload.name is not None:
        enterprise.name = payload.name
    if payload.region_code is not None:
        enterprise.region_code = payload.region_code
    if payload.filed_models is not None:
        enterprise.filed_models = _stored_models(payload.filed_models)
    if payload.is_foundation_model_enterprise is not None:
        enterprise.is_foundation_model_enterprise = payload.is_foundation_model_enterprise
    enterprise.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "enterprise.updated",
        "enterprise",
        enterprise.id,
        before=before,
        after=snapshot(enterprise),
    )
    return enterprise


async def _ensure_no_relaxations(session: AsyncSession, enterprise: Enterprise) -> None:
    programs = (
        await session.scalars(
            select(CapRelaxation.program_id)
            .where(CapRelaxation.enterprise_id == enterprise.id)
            .order_by(CapRelaxation.program_id)
        )
    ).all()
    if programs:
        raise Conflict(
            f"enterprise {enterprise.id} has cap relaxations ({', '.join(programs)}); "
            "DELETE them before it stops being a foundation-model enterprise"
        )


async def _ensure_no_open_request_loses_its_model(
    session: AsyncSession, enterprise: Enterprise, models: list[FiledModel]
) -> None:
    kept = {m.filing_number for m in models}
    relied_on = (
        await session.scalars(
            select(ComputeRequest.filed_model)
            .where(
                ComputeRequest.enterprise_id == enterprise.id,
                ComputeRequest.status == "open",
                ComputeRequest.filed_model.is_not(None),
            )
            .distinct()
        )
    ).all()
    dropped = sorted(n for n in relied_on if n is not None and n not in kept)
    if dropped:
        raise Conflict(
            f"open compute requests rely on filed model(s) {', '.join(dropped)}; "
            "cancel them before removing the filing"
        )


async def grant_relaxation(
    session: AsyncSession,
    principal: Principal,
    enterprise: Enterprise,
    program_id: str,
    payload: CapRelaxationIn,
) -> CapRelaxation:
    """Set (or replace) a foundation-model enterprise's annual cap under a relaxable program."""
    program = await session.get(SubsidyProgram, program_id)
    if program is None:
        raise Unprocessable.field(
            ["path", "program_id"],
            f"unknown subsidy program {program_id!r}; see GET /v1/subsidy-programs",
        )
    if not program.cap_relaxable_for_foundation_model_enterprises:
        raise Unprocessable.field(
            ["path", "program_id"],
            f"program {program_id} does not allow cap relaxation for foundation-model enterprises",
        )
    if program.enterprise_annual_cap is None:
        raise Unprocessable.field(
            ["path", "program_id"], f"program {program_id} has no enterprise cap to relax"
        )
    await _lock(session, enterprise)
    await session.refresh(enterprise, attribute_names=["is_foundation_model_enterprise"])
    if not enterprise.is_foundation_model_enterprise:
        raise Conflict(
            f"enterprise {enterprise.id} is not a foundation-model enterprise; "
            "only those may have their cap relaxed"
        )
    if payload.annual_cap <= program.enterprise_annual_cap:
        raise Unprocessable.field(
            ["body", "annual_cap"],
            f"a relaxed cap must exceed the program's enterprise cap "
            f"{format_money(program.enterprise_annual_cap)}",
        )
    existing = await session.get(CapRelaxation, (enterprise.id, program_id))
    before = None
    if existing is None:
        relaxation = CapRelaxation(enterprise_id=enterprise.id, program_id=program_id)
        session.add(relaxation)
    else:
        relaxation = existing
        before = _relaxation_snapshot(existing)
    relaxation.annual_cap = payload.annual_cap
    relaxation.reference = payload.reference
    relaxation.granted_at = utcnow()
    enterprise.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "cap_relaxation.granted",
        "enterprise",
        enterprise.id,
        before=before,
        after=_relaxation_snapshot(relaxation),
    )
    return relaxation


async def revoke_relaxation(
    session: AsyncSession, principal: Principal, enterprise: Enterprise, program_id: str
) -> CapRelaxation:
    await _lock(session, enterprise)
    relaxation = await session.get(CapRelaxation, (enterprise.id, program_id))
    if relaxation is None:
        raise NotFound(f"enterprise {enterprise.id} has no cap relaxation under {program_id}")
    before = _relaxation_snapshot(relaxation)
    await session.delete(relaxation)
    enterprise.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "cap_relaxation.revoked",
        "enterprise",
        enterprise.id,
        before=before,
    )
    return relaxation


def _relaxation_snapshot(r: CapRelaxation) -> dict[str, Any]:
    return {
        "program_id": r.program_id,
        "annual_cap": format_money(r.annual_cap),
        "reference": r.reference,
    }


async def reload(session: AsyncSession, enterprise_id: str) -> Enterprise:
    """The enterprise with its relaxations read again (after they changed in this session)."""
    enterprise = await session.scalar(
        select(Enterprise)
        .where(Enterprise.id == enterprise_id)
        .options(selectinload(Enterprise.cap_relaxations))
        .execution_options(populate_existing=True)
    )
    assert enterprise is not None
    return enterprise
