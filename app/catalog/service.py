from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.schemas import AcceleratorCreate, AcceleratorUpdate
from app.core import audit
from app.core.errors import Conflict, NotFound
from app.core.security import Principal
from app.core.timeutil import utcnow
from app.models import Accelerator, Offer


def snapshot(acc: Accelerator) -> dict[str, object]:
    return {
        "vendor": acc.vendor,
        "model": acc.model,
        "domestic": acc.domestic,
        "memory_gb": acc.memory_gb,
        "bf16_tflops": acc.bf16_tflops,
    }


async def lock_accelerator(session: AsyncSession, acc: Accelerator) -> Accelerator:
    """Re-read a catalog entry under a row lock, so If-Match is checked on what is written."""
    locked = await session.scalar(
        select(Accelerator)
        .where(Accelerator.id == acc.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        raise NotFound(f"accelerator {acc.id} does not exist")
    return locked


async def create_accelerator(
    session: AsyncSession, principal: Principal, payload: AcceleratorCreate
) -> Accelerator:
    if await session.get(Accelerator, payload.id) is not None:
        raise Conflict(f"accelerator {payload.id} already exists")
    acc = Accelerator(**payload.model_dump(), version=1)
    session.add(acc)
    try:
        await session.flush()
    except IntegrityError:
        # Another request created the same id since the check above.
        raise Conflict(f"accelerator {payload.id} already exists") from None
    await audit.record(
        session, principal, "accelerator.created", "accelerator", acc.id, after=snapshot(acc)
    )
    return acc


async def update_accelerator(
    session: AsyncSession, principal: Principal, acc: Accelerator, payload: AcceleratorUpdate
) -> Accelerator:
    before = snapshot(acc)
    changes = payload.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(acc, field, value)
    if "domestic" in changes:
        # An offer's flag always follows its hardware, so correct every offer at once.
        # Each re-flagged offer is a new version: its ETag changes with it, so a
        # client holding the old one cannot overwrite the correction unawares.
        await session.execute(
            update(Offer)
            .where(Offer.accelerator_id == acc.id, Offer.domestic != acc.domestic)
            .values(domestic=acc.domestic, version=Offer.version + 1, updated_at=utcnow())
        )
    acc.version += 1
    await session.flush()
    await audit.record(
        session,
        principal,
        "accelerator.updated",
        "accelerator",
        acc.id,
        before=before,
        after=snapshot(acc),
    )
    return acc
