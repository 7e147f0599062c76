from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile, status
from fastapi.responses import JSONResponse

from app.core.deps import SessionDep
from app.core.errors import problems
from app.core.etag import IdempotencyKey
from app.core.routing import ContractRoute
from app.core.security import CurrentPrincipal
from app.evidence import service
from app.evidence.schemas import EvidenceOut

router = APIRouter(route_class=ContractRoute, prefix="/v1/evidence", tags=["evidence"])


@router.post(
    "",
    response_model=EvidenceOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        **problems(401, 403, 413, 415, 422),
        415: {
            **problems(415)[415],
            "description": "The body is not multipart/form-data (one file in the field `file`)",
        },
        200: {"model": EvidenceOut, "description": "The same bytes, uploaded before"},
    },
)
async def upload_evidence(
    file: Annotated[UploadFile, File(description="A PDF, PNG or JPEG of at most 10 MiB")],
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Upload a contract, invoice, proof of payment or delivery record; the same bytes
    uploaded again by the same party answer the same record (200)."""
    # One byte more than the limit is enough to know the file is too large.
    content = await file.read(service.MAX_BYTES + 1)
    evidence, created = await service.upload(
        session, principal, content, file.filename, file.content_type
    )
    body = EvidenceOut.model_validate(evidence).model_dump(mode="json")
    headers = {"Location": f"/v1/evidence/{evidence.id}"}
    return JSONResponse(body, status_code=201 if created else 200, headers=headers)


@router.get("/{evidence_id}", response_model=EvidenceOut, responses=problems(401, 404))
async def get_evidence(
    evidence_id: str, session: SessionDep, principal: CurrentPrincipal
) -> EvidenceOut:
    """An evidence file's metadata (its owner, reviewers of a claim citing it, the operator)."""
    return EvidenceOut.model_validate(await service.get_for(session, principal, evidence_id))


@router.get(
    "/{evidence_id}/content",
    response_class=Response,
    responses={
        **problems(401, 404),
        200: {
            "description": "The file's bytes, with its media type",
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
)
async def get_evidence_content(
    evidence_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """An evidence file's bytes, with their media type."""
    evidence = await service.get_for(session, principal, evidence_id)
    content = await service.content_of(session, evidence)
    return Response(
        content,
        media_type=evidence.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{evidence.id}"',
            "X-Content-SHA256": evidence.sha256,
        },
    )
