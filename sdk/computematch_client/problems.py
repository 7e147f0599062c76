"""Errors as exceptions (hand-written): every answer outside 2xx raises an `ApiError`.

The API answers errors as RFC 9457 problem documents (`application/problem+json`); the
exception carries its fields, and its class says the status family, so callers catch what
they can handle (`except Conflict as exc: if exc.reason == "capacity": ...`) and let the
rest rise.
"""

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

from .types import Response

T = TypeVar("T")


class ApiError(Exception):
    """An error answer. `status`, `type`, `title`, `detail`, `reason` (which rule failed, on
    some 409s), `errors` (each field at fault on a 422: `{"loc": [...], "msg": ...}`),
    `request_id` (quote it to the operator) and `retry_after` (seconds, on 429 and some
    409s and 503s)."""

    status_code: ClassVar[int | None] = None

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str | None = None,
        *,
        reason: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        instance: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.reason = reason
        self.errors: list[dict[str, Any]] = errors or []
        self.instance = instance
        self.request_id = request_id
        self.retry_after = retry_after
        text = f"{status} {title}"
        if detail:
            text += f": {detail}"
        if reason:
            text += f" (reason: {reason})"
        super().__init__(text)


class ClientError(ApiError):
    """A 4xx: the request cannot succeed as it is."""


class BadRequest(ClientError):
    status_code = 400


class Unauthorized(ClientError):
    """No key, an unknown key or a revoked key."""

    status_code = 401


class Forbidden(ClientError):
    """The key's role may not take this action."""

    status_code = 403


class NotFound(ClientError):
    """No such object, or not the caller's to see."""

    status_code = 404


class Conflict(ClientError):
    """The state forbids it; for quotes and orders `reason` says which rule: `capacity`,
    `subsidy`, `quote_expired`, `quote_used`, `offer_unavailable`, `request_closed`; or
    `idempotency-in-progress` as `type` for a retry that arrived while the first runs."""

    status_code = 409


class PreconditionFailed(ClientError):
    """A stale `If-Match`: read the resource again and reapply the change."""

    status_code = 412


class PayloadTooLarge(ClientError):
    status_code = 413


class Unprocessable(ClientError):
    """The input breaks the schema or a rule; `errors` lists each field at fault."""

    status_code = 422


class RateLimited(ClientError):
    """Over the rate limit: wait `retry_after` seconds."""

    status_code = 429


class ServerError(ApiError):
    """A 5xx: the service failed. Creating calls were already retried with their
    Idempotency-Key before this is raised."""


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status_code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        Unprocessable,
        RateLimited,
    )
    if cls.status_code is not None
}


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_from(status: int, content: bytes, headers: Mapping[str, str]) -> ApiError:
    """The exception for an error answer; a body that is not a problem document (a proxy's
    page) still gives one, titled by the status."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    text = content.decode(errors="replace")[:500] if content and not body else None
    errors = body.get("errors")
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ClientError)
    return cls(
        status,
        str(body.get("type") or "about:blank"),
        str(body.get("title") or phrase),
        body.get("detail") or text,
        reason=body.get("reason"),
        errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
        instance=body.get("instance"),
        request_id=body.get("request_id") or headers.get("x-request-id"),
        retry_after=_seconds(headers.get("retry-after")),
    )


def success(response: Response[Any]) -> Any:
    """The parsed body of a 2xx answer; any other answer raises its `ApiError`."""
    if 200 <= response.status_code < 300:
        return response.parsed
    raise error_from(response.status_code, response.content, response.headers)
