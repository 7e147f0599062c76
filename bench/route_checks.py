"""What ContractRoute's checks (app/core/routing.py) add to a request: its handler
around a handler that does nothing, against that handler alone, called in process on
one request many times, in CPU time (no server, no database, no FastAPI handler: whose own cost,
~100 µs, moves by more than the checks cost when the machine is busy), min of several
repeats. The handler that does nothing reads what FastAPI's reads of every request
(its query parameters, its Content-Type), which the Request object caches.

    .venv/bin/python bench/route_checks.py

Three requests: `POST /v1/orders` as placed (no query string, a JSON body), a match
list's `?limit=10` (one parameter: the set difference) and a search
`GET /v1/offers?accelerator_id=a&accelerator_id=b&min_cards=8` (a repeat: its count).
"""

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.routing import ContractRoute

ROUNDS = 200_000
EMPTY = Response()
REPEATS = 7


class OrderCreate(BaseModel):
    quote_id: str


async def place(payload: OrderCreate) -> dict[str, str]:
    return {"quote_id": payload.quote_id}


async def search(
    accelerator_id: Annotated[list[str] | None, Query()] = None,
    min_cards: Annotated[int | None, Query()] = None,
) -> dict[str, Any]:
    return {"n": len(accelerator_id or [])}


def scope(method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": headers,
    }


async def nothing(request: Request) -> Response:
    # What FastAPI's handler reads of every such request anyway (and the Request caches,
    # so the checks reading them first cost nothing more): the query parameters, and
    # the Content-Type of a body.
    request.query_params  # noqa: B018
    request.headers.get("content-type")
    return EMPTY


def checks_only(route: ContractRoute) -> Any:
    """The route's handler around `nothing` in place of FastAPI's."""
    real = APIRoute.get_route_handler
    APIRoute.get_route_handler = lambda self: nothing  # type: ignore[method-assign,assignment,return-value]
    try:
        return route.get_route_handler()
    finally:
        APIRoute.get_route_handler = real  # type: ignore[method-assign]


async def per_call(handler: Any, make: Any, body: bytes) -> float:

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    best = float("inf")
    for _ in range(REPEATS):
        started = time.process_time()
        for _ in range(ROUNDS):
            await handler(Request(make(), receive))
        best = min(best, (time.process_time() - started) / ROUNDS)
    return best


async def main() -> None:
    order_body = b'{"quote_id": "quo_01a2"}'
    cases = {
        "POST /v1/orders (JSON body, no query)": (
            place,
            "POST",
            lambda: scope(
                "POST",
                "/v1/orders",
                b"",
                [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(order_body)).encode()),
                ],
            ),
            order_body,
        ),
        "GET with one parameter (as a match list's ?limit=10)": (
            search,
            "GET",
            lambda: scope("GET", "/v1/compute-requests/x/matches", b"min_cards=10", []),
            b"",
        ),
        "GET /v1/offers?accelerator_id=a&accelerator_id=b&min_cards=8": (
            search,
            "GET",
            lambda: scope(
                "GET", "/v1/offers", b"accelerator_id=a&accelerator_id=b&min_cards=8", []
            ),
            b"",
        ),
    }
    for name, (endpoint, method, make, body) in cases.items():
        plain = await per_call(nothing, make, body)
        checked = await per_call(
            checks_only(ContractRoute("/x", endpoint, methods=[method])), make, body
        )
        print(
            f"{name}: {(checked - plain) * 1e9:+.0f} ns a request "
            f"(the request and what FastAPI reads of it: {plain * 1e9:.0f} ns)"
        )


if __name__ == "__main__":
    asyncio.run(main())
