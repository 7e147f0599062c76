import time

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.schemas import AcceleratorCreate, AcceleratorUpdate, Figures
from app.core import audit
from app.core.errors import Conflict, NotFound, Unprocessable
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
        "fp16_tflops": acc.fp16_tflops,
        "int8_tops": acc.int8_tops,
        "memory_bandwidth_gbps": acc.memory_bandwidth_gbps,
        "perf_index": acc.perf_index,
        "perf_source": acc.perf_source,
    }


# Each model's perf_index, read by every match: the catalog is a few dozen rows that
# change a few times a year, so a process keeps them for PERF_TTL seconds instead of
# reading them per match; a change made through this process is seen at once, one
# made through another process within PERF_TTL.
PERF_TTL = 60.0
# Per database (engine): (when read, the table).
_perf: dict[int, tuple[float, dict[str, dict[str, str]]]] = {}


def forget_perf_indexes() -> None:
    _perf.clear()


async def perf_indexes(session: AsyncSession) -> dict[str, dict[str, str]]:
    """Accelerator id -> its perf_index (models without one are absent)."""
    now = time.monotonic()
    engine = id(session.bind)
    cached = _perf.get(engine)
    if cached is not None and now - cached[0] < PERF_TTL:
        return cached[1]
    rows = await session.execute(
        select(Accelerator.id, Accelerator.perf_index).where(Accelerator.perf_index.is_not(None))
    )
    table = {acc_id: dict(index) for acc_id, index in rows if index}
    _perf[engine] = (now, table)
    return table


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
    forget_perf_indexes()
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
    # The comparison figures may be cleared with an explicit null.
    changes.update(
        {
            name: None
            for name in Figures.model_fields
            if name in payload.model_fields_set and getattr(payload, name) is None
        }
    )
    if (
        "perf_index" in changes
        and changes["perf_index"] is not None
        and (changes.get("perf_source", acc.perf_source) is None)
    ):
        raise Unprocessable.field(
            ["body", "perf_source"],
            "perf_index needs perf_source: the benchmark or 'vendor figure'",
        )
    for field, value in changes.items():
        setattr(acc, field, value)
    forget_perf_indexes()
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
