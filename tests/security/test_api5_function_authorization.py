"""API5 Broken function level authorization.

Every operator-only operation of the OpenAPI document refuses every provider
and enterprise key with 403, whatever the id (owners included), and changes
nothing; operations kept for one role refuse the other with 403; every
operation but the health probes needs a key (401), before anything else is
looked at.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from httpx import AsyncClient

from app.core.db import Database
from app.core.security import require_operator
from tests.security.conftest import PARTIES, World, changed_tables, snapshot
from tests.security.operations import OPERATIONS, call, document_operations, unclassified


def test_every_operation_says_who_may_call_it(app: FastAPI) -> None:
    missing = unclassified(app.openapi())
    assert not missing, (
        "operations with no entry in tests/security/operations.py OPERATIONS "
        f"(say who may call them and how): {missing}"
    )
    stale = set(OPERATIONS) - set(document_operations(app.openapi()))
    assert not stale, f"OPERATIONS names operations the API no longer has: {sorted(stale)}"


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def test_routes_that_require_the_operator_are_listed_as_operator_only(app: FastAPI) -> None:
    # The table and the code agree: a route guarded by require_operator is operator-only.
    guarded = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and _depends_on(route.dependant, require_operator):
            guarded |= {(method, str(context.path)) for method in route.methods or ()}
    assert len(guarded) >= 12
    for method, path in guarded:
        assert OPERATIONS[(method, path)].operator_only, (method, path)


async def test_operator_only_operations_refuse_every_other_key_with_403(
    client: AsyncClient, db: Database, app: FastAPI, world: World
) -> None:
    before = await snapshot(db)
    failures: list[str] = []
    operator_only = [
        (m, p) for m, p in document_operations(app.openapi()) if OPERATIONS[(m, p)].operator_only
    ]
    assert len(operator_only) >= 15
    for method, template in operator_only:
        op = OPERATIONS[(method, template)]
        for party in PARTIES:
            for ids in (None, _unknown_ids(op, world)):
                resp = await call(client, world, method, template, world.headers(party), ids=ids)
                if resp.status_code != 403:
                    failures.append(
                        f"{party}: {method} {template} {ids or ''} -> {resp.status_code}"
                    )
        changed = changed_tables(before, await snapshot(db))
        if changed:
            failures.append(f"{method} {template} changed {changed}")
            before = await snapshot(db)
    assert not failures, "\n".join(failures)


def _unknown_ids(op: Any, world: World) -> dict[str, str] | None:
    # The refusal does not depend on the id: an id that does not exist is refused alike.
    if op.ids is None:
        return None
    return dict.fromkeys(op.ids(world), "x_missing")


async def test_operations_of_one_role_refuse_the_other_with_403(
    client: AsyncClient, db: Database, app: FastAPI, world: World
) -> None:
    before = await snapshot(db)
    role_bound = {
        (m, p): op
        for (m, p), op in OPERATIONS.items()
        if "{" not in p and not op.operator_only and not op.public and op.allowed != set(PARTIES)
    }
    assert {p for _, p in role_bound} >= {"/v1/offers", "/v1/compute-requests", "/v1/orders"}
    for (method, template), op in role_bound.items():
        for party in set(PARTIES) - op.allowed:
            resp = await call(client, world, method, template, world.headers(party))
            assert resp.status_code == 403, (party, method, template, resp.text)
    assert changed_tables(before, await snapshot(db)) == []


async def test_every_operation_needs_a_key_before_anything_else(
    client: AsyncClient, db: Database, app: FastAPI, world: World
) -> None:
    before = await snapshot(db)
    for method, template in document_operations(app.openapi()):
        op = OPERATIONS[(method, template)]
        if op.public:
            continue
        for ids in (None, _unknown_ids(op, world)):
            for headers in ({}, {"Authorization": "Bearer cm_" + "0" * 43}):
                if not headers and (method, template) in SELF_REGISTRATION:
                    continue  # keyless on purpose (API6 and API4 cover them)
                resp = await call(client, world, method, template, headers, ids=ids)
                assert resp.status_code == 401, (method, template, ids, resp.text)
                assert resp.headers["www-authenticate"] == "Bearer"
    assert changed_tables(before, await snapshot(db)) == []


SELF_REGISTRATION = {("POST", "/v1/providers"), ("POST", "/v1/enterprises")}
