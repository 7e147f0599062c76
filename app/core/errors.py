"""RFC 9457 problem+json: one error base, one renderer.

Domains declare their own errors as subclasses of AppError; routes list the
ones they can return in `responses=` (see `problems()`), so the OpenAPI
document and generated SDKs know them.
"""

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("computematch.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://computematch.example/problems/"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where the problem is, e.g. ["body", "cards"]')
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[TYPE_BASE + "not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(None, examples=["offer off_123 does not exist"])
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        None, description="For a validation error (422): each field at fault and why"
    )
    request_id: str | None = Field(None, description="Quote it when asking the operator")
    reason: str | None = Field(
        None,
        description="For some conflicts (409), which rule failed: `capacity`, `subsidy`, "
        "`quote_used`, `quote_expired`, `request_closed`, `offer_unavailable`, "
        "`window_started`",
        examples=["capacity"],
    )


class AppError(Exception):
    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra


class Unauthorized(AppError):
    status = 401
    type = "unauthorized"
    title = "Missing or unknown API key"


class Forbidden(AppError):
    status = 403
    type = "forbidden"
    title = "This key may not take this action"


class NotFound(AppError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    type = "conflict"
    title = "Conflict with the current state"


class PreconditionFailed(AppError):
    status = 412
    type = "precondition-failed"
    title = "The resource changed since you read it (stale If-Match)"


class PayloadTooLarge(AppError):
    status = 413
    type = "payload-too-large"
    title = "Request body too large"


class Unprocessable(AppError):
    status = 422
    type = "validation-error"
    title = "The request is not valid"

    @classmethod
    def field(cls, loc: list[str | int], msg: str) -> "Unprocessable":
        return cls(msg, errors=[{"loc": loc, "msg": msg}])


class TooManyRequests(AppError):
    status = 429
    type = "rate-limited"
    title = "Too many requests"


def problem_response(
    status: int,
    type_: str,
    title: str,
    detail: str | None,
    *,
    request: Request | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_ if type_.startswith(("http", "about:")) else TYPE_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


def _clean_msg(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.type,
            exc.title,
            exc.detail,
            request=request,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": _loc(e.get("loc", ())), "msg": _clean_msg(e)} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem_response(
            422,
            "validation-error",
            "The request is not valid",
            detail,
            request=request,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            400: "Bad request",
            404: "Not found",
            405: "Method not allowed",
            413: "Request body too large",
        }
        types = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}
        return problem_response(
            exc.status_code,
            types.get(exc.status_code, "http-error"),
            titles.get(exc.status_code, "HTTP error"),
            str(exc.detail) if exc.detail else None,
            request=request,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A 500 is always a bug: log it whole, tell the client nothing internal.
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "Internal server error",
            "An unexpected error occurred; it has been logged.",
            request=request,
        )


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries declaring the problem+json errors a route can return.

    A route that takes a key (it declares 401) may also be rate limited: 429 comes with it.
    """
    if 401 in statuses and 429 not in statuses:
        statuses = (*statuses, 429)
    descriptions = {
        400: "Bad request: the body is not UTF-8 JSON",
        401: "Missing or unknown API key",
        403: "The key may not take this action",
        404: "Not found, or not visible to this key",
        409: "Conflict with the current state",
        412: "Stale If-Match",
        413: "Request body too large",
        415: "The body is not JSON (send Content-Type: application/json)",
        422: "Validation error",
        429: "Rate limited",
    }
    responses: dict[int | str, dict[str, Any]] = {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
    if 429 in responses:
        responses[429]["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        }
    return responses
