"""Hostile JSON is a 4xx problem before anything parses it, on every path, with an
Idempotency-Key or without: nesting past the depth limit, bodies past the size limit.

Found under fault injection: a body nested about 600 to 1,000 levels deep (a few
kilobytes, no key needed) was an unauthenticated 500 on any POST path (a RecursionError
in the text guard's walk, or in the parser of the route behind it).
"""

from typing import Any

import pytest
from httpx import AsyncClient

from app.core.textguard import MAX_DEPTH, storable, too_deep
from tests.factories import OPERATOR, bearer, create_enterprise
from tests.registry.helpers import assert_problem, error_locs

JSON = {"Content-Type": "application/json"}


def nested(depth: int, *, kind: str = "[", leaf: str = "1") -> bytes:
    close = {"[": "]", "{": "}"}[kind]
    opening = kind if kind == "[" else '{"a":'
    return (opening * depth + leaf + close * depth).encode()


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (nested(MAX_DEPTH), False),
        (nested(MAX_DEPTH + 1), True),
        (nested(MAX_DEPTH + 1, kind="{"), True),
        (b"[" * 100_000, True),  # opened, never closed
        (b'{"a": "' + b"[" * 500 + b'"}', False),  # brackets in a string are text
        (b'["\\"[' + b"[" * 100 + b'"]', False),  # an escaped quote does not end it
        (b'["\\\\", ' + b"[" * 100 + b"1" + b"]" * 100 + b"]", True),  # an escaped backslash
        (b"[" + b"[1]," * 5_000 + b"1]", False),  # many, but shallow
    ],
)
def test_depth_is_counted_outside_strings(body: bytes, deep: bool) -> None:
    assert too_deep(body) is deep


def test_storable_walks_any_depth() -> None:
    value: Any = "\x00"
    for _ in range(100_000):
        value = [value]
    assert storable(value) is False


# Paths of each kind: keyless self-registration, an enterprise's order, a PATCH.
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 1_000, 100_000])
@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "escaped"])
@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "key"])
async def test_deep_json_is_a_422_on_every_path(
    client: AsyncClient, depth: int, escaped: bool, keyed: bool
) -> None:
    # A `\u` escape in the body makes the text guard parse it: both ways are refused.
    body = nested(depth, leaf='"\\u00e9"' if escaped else "1")
    enterprise = await create_enterprise(client)
    calls = [
        ("POST", "/v1/providers", {}),
        ("POST", "/v1/enterprises", {}),
        ("POST", "/v1/orders", bearer(enterprise["api_key"])),
        ("POST", "/v1/quotes", OPERATOR),
        ("PATCH", f"/v1/enterprises/{enterprise['id']}", OPERATOR),
    ]
    for i, (method, path, auth) in enumerate(calls):
        headers = {**JSON, **auth}
        if keyed:
            headers["Idempotency-Key"] = f"deep-{depth}-{escaped}-{i}"
        resp = await client.request(method, path, content=body, headers=headers)
        problem = assert_problem(resp, 422)
        assert error_locs(problem) == [["body"]], (path, problem)
        assert str(MAX_DEPTH) in problem["detail"]


async def test_json_within_the_depth_is_read_by_the_route(client: AsyncClient) -> None:
    # Not refused for its depth: the route's own validation answers it.
    resp = await client.post("/v1/providers", content=nested(MAX_DEPTH, kind="{"), headers=JSON)
    problem = assert_problem(resp, 422)
    assert str(MAX_DEPTH) not in (problem["detail"] or "")


@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "key"])
async def test_a_body_past_the_size_limit_is_a_413(
    client: AsyncClient, app: Any, keyed: bool
) -> None:
    limit = app.state.settings.max_body_bytes
    body = b'{"name": "' + b"x" * limit + b'"}'
    headers = {**JSON, **OPERATOR}
    if keyed:
        headers["Idempotency-Key"] = "too-large"
    resp = await client.post("/v1/providers", content=body, headers=headers)
    assert_problem(resp, 413)
