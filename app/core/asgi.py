"""Small pieces of plain ASGI that the middlewares share."""

import json
from typing import Any

from starlette.types import Scope, Send

from app.core.errors import PROBLEM_JSON, TYPE_BASE


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    type_: str,
    title: str,
    detail: str,
    extra_headers: list[Any] = (),  # type: ignore[assignment]
    fields: dict[str, Any] | None = None,
) -> None:
    """A problem answered by a middleware, before or instead of the app: like every
    other problem it names the request's path (`instance`) and its `request_id`."""
    document: dict[str, Any] = {
        "type": TYPE_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        document["request_id"] = request_id
    document.update(fields or {})
    body = json.dumps(document).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + list(extra_headers)}
    )
    await send({"type": "http.response.body", "body": body})
