"""Text no database can store (NUL, lone surrogates) is a 422 wherever it comes in.

Found by fuzzing the live server: on PostgreSQL a NUL in any string reaching a query was a
500, and a lone surrogate in a JSON body was a 500 on both databases.
"""

import base64
import json

import pytest
from httpx import AsyncClient

from app.core.textguard import storable
from app.core.validators import make_credit_code
from tests.factories import OPERATOR
from tests.helpers import assert_problem, error_locs

JSON = {**OPERATOR, "Content-Type": "application/json"}


def provider_body(name: str) -> str:
    # Written by hand: json.dumps would refuse to write a lone surrogate's escape.
    code = make_credit_code("330108", 777)
    return (
        f'{{"name": "{name}", "kind": "intelligent_computing_center", '
        f'"unified_social_credit_code": "{code}", "region_code": "330108"}}'
    )


@pytest.mark.parametrize("name", ["a\\u0000b", "a\\ud800b", "\\udfff"])
async def test_unstorable_text_in_a_body_is_422_and_stores_nothing(
    client: AsyncClient, name: str
) -> None:
    resp = await client.post("/v1/providers", content=provider_body(name), headers=JSON)
    assert error_locs(assert_problem(resp, 422)) == [["body"]]
    listed = await client.get("/v1/providers", headers=OPERATOR)
    assert listed.json()["items"] == []


async def test_escaped_text_that_is_fine_is_taken(client: AsyncClient) -> None:
    # ensure_ascii escapes (as `requests` sends them), an emoji as a surrogate pair.
    name = json.dumps("滨江智算中心 😀")[1:-1]
    assert "\\u" in name
    resp = await client.post("/v1/providers", content=provider_body(name), headers=JSON)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "滨江智算中心 😀"


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("/v1/offers/off_%00", "path"),
        ("/v1/offers?provider_id=a%00b", "query"),
        ("/v1/audit-log?action=%00", "query"),
    ],
)
async def test_nul_in_a_path_or_query_is_422(client: AsyncClient, url: str, where: str) -> None:
    resp = await client.get(url, headers=OPERATOR)
    assert error_locs(assert_problem(resp, 422)) == [[where]]


async def test_a_cursor_that_hides_a_nul_is_422(client: AsyncClient) -> None:
    cursor = base64.urlsafe_b64encode(b"k:\x00").decode().rstrip("=")
    resp = await client.get(f"/v1/providers?cursor={cursor}", headers=OPERATOR)
    assert error_locs(assert_problem(resp, 422)) == [["query", "cursor"]]


def test_storable_looks_into_keys_and_nesting() -> None:
    assert storable({"a": [1, "b", {"c": None}]})
    assert not storable({"a\x00": 1})
    assert not storable([["\ud800"]])
