import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.main import create_app

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    generated = create_app().openapi()
    committed = json.loads(COMMITTED.read_text())
    assert committed == generated, "openapi/openapi.json is stale: run `make openapi`"


def test_operation_ids_are_unique_and_readable(app: FastAPI) -> None:
    ids = [op["operationId"] for path in app.openapi()["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    for op_id in ids:
        assert op_id.islower(), op_id
        assert " " not in op_id, op_id
        assert "__" not in op_id, op_id
    for expected in ("list_offers", "create_offer", "sync_offers", "create_provider"):
        assert expected in ids


def test_every_route_is_in_the_document(app: FastAPI) -> None:
    documented = {
        (path, method.upper()) for path, ops in app.openapi()["paths"].items() for method in ops
    }
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods:
                assert (route.path, method) in documented
