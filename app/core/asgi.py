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
    send: Send,
    status: int,
    type_: str,
    title: str,
    detail: str,
    extra_headers: list[Any] = (),  # type: ignore[assignment]
    fields: dict[str, Any] | None = None,
) -> None:
    body = json.dumps(
        {
            "type": TYPE_BASE + type_,
            "title": title,
            "status": status,
            "detail": detail,
            **(fields or {}),
        }
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + list(extra_headers)}
    )
    await send({"type": "http.response.body", "body": body})
