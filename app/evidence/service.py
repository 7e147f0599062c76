"""Evidence files: checked by their magic bytes, stored in the database, content-addressed
by SHA-256 per owner, read by their owner, the reviewers of a claim citing them and the
operator."""

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden, NotFound, PayloadTooLarge, Unprocessable
from app.core.ids import new_id
from app.core.security import Principal
from app.core.timeutil import utcnow
from app.models import ClaimEvidence, Evidence, VoucherClaim

MAX_BYTES = 10 * 1024 * 1024
# What each accepted media type's file starts with.
MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
# Declared types that say nothing of the content: the magic bytes decide.
UNSPECIFIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def sniff(content: bytes) -> str | None:
    for media_type, prefixes in MAGIC.items():
        if content.startswith(prefixes):
            return media_type
    return None


def media_type_of(content: bytes, declared: str | None) -> str:
    """The file's media type, from its magic bytes; a 422 when they are not PDF, PNG or
    JPEG, or are not what the declared type says."""
    if not content:
        raise Unprocessable.field(["body", "file"], "the file is empty")
    found = sniff(content)
    declared_type = (declared or "").split(";")[0].strip().lower()
    if found is None:
        raise Unprocessable.field(
            ["body", "file"], "the file is not a PDF, PNG or JPEG (by its content)"
        )
    if declared_type not in UNSPECIFIC and declared_type != found:
        raise Unprocessable.field(
            ["body", "file"], f"the file is declared {declared_type} but its content is {found}"
        )
    return found


def owner_of(principal: Principal) -> str:
    owner = principal.enterprise_id or principal.provider_id
    if owner is None and principal.is_operator:
        owner = principal.key_id
    if owner is None:
        raise Forbidden("an enterprise, a provider or the operator uploads evidence")
    return owner


async def upload(
    session: AsyncSession,
    principal: Principal,
    content: bytes,
    filename: str | None,
    declared: str | None,
) -> tuple[Evidence, bool]:
    """(the record, whether it is new): the same bytes from the same owner are one record."""
    owner = owner_of(principal)
    if len(content) > MAX_BYTES:
        raise PayloadTooLarge(f"the file is {len(content)} bytes; the limit is {MAX_BYTES}")
    media_type = media_type_of(content, declared)
    digest = hashlib.sha256(content).hexdigest()
    existing = await _by_digest(session, owner, digest)
    if existing is not None:
        return existing, False
    evidence = Evidence(
        id=new_id("evd"),
        owner_id=owner,
        uploaded_by_key_id=principal.key_id,
        sha256=digest,
        media_type=media_type,
        size_bytes=len(content),
        filename=_clean_name(filename),
        uploaded_at=utcnow(),
        content=content,
    )
    try:
        async with session.begin_nested():
            session.add(evidence)
    except IntegrityError:
        # The same bytes arrived at once from the same owner: one record, the first.
        found = await _by_digest(session, owner, digest)
        if found is None:
            raise
        return found, False
    return evidence, True


def _clean_name(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "upload"


async def _by_digest(session: AsyncSession, owner: str, digest: str) -> Evidence | None:
    found: Evidence | None = await session.scalar(
        select(Evidence).where(Evidence.owner_id == owner, Evidence.sha256 == digest)
    )
    return found


async def can_read(session: AsyncSession, principal: Principal, evidence: Evidence) -> bool:
    if principal.is_operator:
        return True
    if evidence.owner_id in (principal.enterprise_id, principal.provider_id):
        return True
    if principal.is_reviewer and principal.program_ids:
        cited = await session.scalar(
            select(ClaimEvidence.claim_id)
            .join(VoucherClaim, VoucherClaim.id == ClaimEvidence.claim_id)
            .where(
                ClaimEvidence.evidence_id == evidence.id,
                VoucherClaim.program_id.in_(principal.program_ids),
            )
            .limit(1)
        )
        return cited is not None
    return False


async def get_for(session: AsyncSession, principal: Principal, evidence_id: str) -> Evidence:
    evidence = await session.get(Evidence, evidence_id)
    if evidence is None or not await can_read(session, principal, evidence):
        raise NotFound(f"evidence {evidence_id} does not exist")
    return evidence


async def content_of(session: AsyncSession, evidence: Evidence) -> bytes:
    content: bytes | None = await session.scalar(
        select(Evidence.content).where(Evidence.id == evidence.id)
    )
    assert content is not None
    return content
