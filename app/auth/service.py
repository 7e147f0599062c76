from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.schemas import ApiKeyCreate
from app.core import audit
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.security import Principal, generate_key, hash_key
from app.core.timeutil import utcnow
from app.models import ApiKey, Enterprise, Provider, SubsidyProgram


async def issue_key(
    session: AsyncSession,
    *,
    role: str,
    provider_id: str | None = None,
    enterprise_id: str | None = None,
    name: str | None = None,
    program_ids: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the secret (which is never stored)."""
    secret = generate_key()
    key = ApiKey(
        id=new_id("key"),
        key_hash=hash_key(secret),
        prefix=secret[:10],
        role=role,
        provider_id=provider_id,
        enterprise_id=enterprise_id,
        name=name,
        program_ids=list(program_ids or []),
    )
    session.add(key)
    await session.flush()
    return key, secret


async def create_key(
    session: AsyncSession, principal: Principal, payload: ApiKeyCreate
) -> tuple[ApiKey, str]:
    if payload.provider_id is not None and await session.get(Provider, payload.provider_id) is None:
        raise Unprocessable.field(["body", "provider_id"], "no such provider")
    if (
        payload.enterprise_id is not None
        and await session.get(Enterprise, payload.enterprise_id) is None
    ):
        raise Unprocessable.field(["body", "enterprise_id"], "no such enterprise")
    for index, program_id in enumerate(payload.program_ids or []):
        if await session.get(SubsidyProgram, program_id) is None:
            raise Unprocessable.field(["body", "program_ids", index], "no such program")
    key, secret = await issue_key(
        session,
        role=payload.role.value,
        provider_id=payload.provider_id,
        enterprise_id=payload.enterprise_id,
        name=payload.name,
        program_ids=payload.program_ids,
    )
    await audit.record(
        session,
        principal,
        "api_key.created",
        "api_key",
        key.id,
        after={
            "role": key.role,
            "provider_id": key.provider_id,
            "enterprise_id": key.enterprise_id,
            "program_ids": key.program_ids,
        },
    )
    return key, secret


async def revoke_key(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
    key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id).with_for_update())
    if key is None:
        raise NotFound(f"API key {key_id} does not exist")
    if key.revoked_at is not None:
        raise Conflict(f"API key {key_id} is already revoked")
    key.revoked_at = utcnow()
    await audit.record(session, principal, "api_key.revoked", "api_key", key.id)
    return key
