"""Text no database can store is refused at the door, as a 422, whatever the route.

A NUL character (U+0000) is valid JSON (`"\\u0000"`) and valid in a URL (`%00`), but
PostgreSQL's text types cannot hold it; a lone surrogate (`"\\ud800"`) is valid JSON too,
but is not Unicode, so it cannot be encoded to UTF-8 for either database or for a log line.
Both used to reach a query and come back as a 500 (found by fuzzing). Rather than teach
every string field, path and query parameter, this checks every request once: the path,
the query string, and any JSON body that has a `\\u` escape at all (the only way either
can appear in valid JSON, so ordinary bodies are not parsed twice).
"""

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import send_problem
from app.core.state import request_state

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MESSAGE = "text may not contain NUL (U+0000) or unpaired surrogate characters"


def storable(value: Any) -> bool:
    """Whether every string in a decoded JSON value (keys included) can be stored."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v) for v in value)
    return True


class TextGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            await self._refuse(send, scope, "path")
            return
        if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await self._refuse(send, scope, "query")
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if b"\\u" in body:
            try:
                document = json.loads(body)
            except ValueError:
                document = None  # not JSON: the route answers that
            if not storable(document):
                await self._refuse(send, scope, "body")
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, scope: Scope, where: str) -> None:
        await send_problem(
            send,
            422,
            "validation-error",
            "The request is not valid",
            f"{where}: {MESSAGE}",
            fields={
                "errors": [{"loc": [where], "msg": MESSAGE}],
                "instance": scope["path"].replace("\x00", "\\u0000"),
                "request_id": request_state(scope).request_id,
            },
        )
