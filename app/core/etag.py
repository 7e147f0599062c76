"""ETags from a resource's version; If-Match on PATCH (412 when stale)."""

import hashlib
from typing import Annotated

from fastapi import Header, Response

from app.core.errors import PreconditionFailed


def etag_for(resource_id: str, version: int) -> str:
    digest = hashlib.sha256(f"{resource_id}:{version}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def set_etag(response: Response, resource_id: str, version: int) -> None:
    response.headers["ETag"] = etag_for(resource_id, version)


def set_location(response: Response, path: str) -> None:
    """A 201's `Location`: the path of the resource it created."""
    response.headers["Location"] = path


def check_if_match(if_match: str | None, resource_id: str, version: int) -> None:
    if if_match is None:
        return
    current = etag_for(resource_id, version)
    candidates = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if "*" not in candidates and current not in candidates:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current ETag {current}; read it again"
        )


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="ETag of the version you read; the update is refused (412) if it changed",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe key: the same key and body answers the first response again",
    ),
]
