"""Text no database can store is refused at the door, as a 422, whatever the route.

A NUL character (U+0000) is valid JSON (`"\\u0000"`) and valid in a URL (`%00`), but
PostgreSQL's text types cannot hold it; a lone surrogate (`"\\ud800"`) is valid JSON too,
but is not Unicode, so it cannot be encoded to UTF-8 for either database or for a log line.
Both used to reach a query and come back as a 500 (found by fuzzing). Rather than teach
every string field, path and query parameter, this checks every request once: the path,
the query string, and any JSON body that has a `\\u` escape at all (the only way either
can appear in valid JSON, so ordinary bodies are not parsed twice).

It also refuses a JSON body nested deeper than `MAX_DEPTH` before anything parses it:
every parser here (the standard library's, FastAPI's, this module's) recurses once a
level, and a body of a thousand brackets (a few kilobytes, no key needed) used to end
in a RecursionError, a 500. The count needs no parse: brackets outside strings.
"""

import json
from array import array
from itertools import accumulate
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import send_problem

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MESSAGE = "text may not contain NUL (U+0000) or unpaired surrogate characters"
# No document of the API nests past 5 levels; 64 leaves room and stays far below
# every parser's recursion limit.
MAX_DEPTH = 64
DEPTH_MESSAGE = f"JSON may not nest deeper than {MAX_DEPTH} levels"
# Opening brackets as +1, closing ones as -1 (signed bytes); everything else deleted.
_AS_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit` (a bracket
    opened and never closed counts as open).

    The escapes and strings are taken away and the brackets kept as steps by the bytes'
    own methods, in C; only the running sum is Python's (`accumulate`), a step per
    bracket, about what parsing the same body costs. (A regular expression for the
    strings cost seconds on a body of a few megabytes of short strings.)"""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # every ordinary body: two scans
    # `\\` first, so that in `\\"` the quote is left to close its string.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    steps = array("b", outside_strings.translate(_AS_STEPS, _NOT_BRACKETS))
    return max(accumulate(steps), default=0) > limit


def _storable_text(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(value: Any) -> bool:
    """Whether every string in a decoded JSON value (keys included) can be stored.
    A walk with a list of its own, not the call stack, so no depth ends it."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not _storable_text(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
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
        if too_deep(body):
            await self._refuse(send, scope, "body", DEPTH_MESSAGE)
            return
        if b"\\u" in body:
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):
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
    async def _refuse(send: Send, scope: Scope, where: str, message: str = MESSAGE) -> None:
        await send_problem(
            scope,
            send,
            422,
            "validation-error",
            "The request is not valid",
            f"{where}: {message}",
            fields={
                "errors": [{"loc": [where], "msg": message}],
                "instance": scope["path"].replace("\x00", "\\u0000"),
            },
        )
