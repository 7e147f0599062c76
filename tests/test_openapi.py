import itertools
import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import compile_path

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
    # Every route, those of included routers too (`app.routes` lists a router as one).
    served = {
        (context.path_format, method)
        for context in iter_route_contexts(app.routes)
        if isinstance(route := context.original_route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    assert served == documented
    assert len(served) > 40


def test_no_two_operations_match_one_request(app: FastAPI) -> None:
    """Routes are matched in the order of their speed's need (app/main.py), not of their
    meaning: that is safe only while no request can match two of them. Every path is
    tried with each parameter as a plain value and as every literal segment of any
    path (where a literal route and a parameter route could meet). Each path is matched
    as the app serves it: a parameter may refuse a literal (a claim id is never
    `export`)."""
    paths = app.openapi()["paths"]
    operations = [(method.upper(), path) for path, item in paths.items() for method in item]
    served = {
        str(context.path_format): context.original_route.path_regex
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    }
    regexes = {path: served.get(path, compile_path(path)[0]) for path in paths}
    literals = sorted({seg for path in paths for seg in path.split("/") if seg and "{" not in seg})
    tried = 0
    for method, path in operations:
        params = re.findall(r"{[^}]+}", path)
        for values in itertools.product(["x", *literals], repeat=len(params)):
            concrete = path
            for param, value in zip(params, values, strict=True):
                concrete = concrete.replace(param, value, 1)
            if not regexes[path].match(concrete):
                continue  # a value its parameter refuses: the request is another route's
            matching = [
                (other_method, other)
                for other_method, other in operations
                if other_method == method and regexes[other].match(concrete)
            ]
            assert matching == [(method, path)], (method, concrete, matching)
            tried += 1
    assert tried > len(operations)


# --------------------------------------------------------------------------- as SDKs meet it


def _committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(COMMITTED.read_text())
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]


def test_committed_document_is_valid_openapi_3_1() -> None:
    document = _committed()
    assert document["openapi"].startswith("3.1")
    validate(document)  # openapi-spec-validator: raises on any violation


def test_every_operation_has_a_summary_and_a_described_tag() -> None:
    document = _committed()
    tags = {t["name"] for t in document["tags"] if t.get("description")}
    for method, path, op in _operations(document):
        auto = op["operationId"].replace("_", " ").title()
        assert op.get("summary"), (method, path)
        assert op["summary"] != auto, (method, path)
        assert op.get("description"), (method, path)
        assert len(op["tags"]) == 1, (method, path)
        assert op["tags"][0] in tags, (method, path)


def test_every_error_is_declared_as_problem_json() -> None:
    document = _committed()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for method, path, op in _operations(document):
        responses = op["responses"]
        keyed = bool(op.get("security"))
        if keyed:
            # A key can be missing or wrong, and a keyed caller can be rate limited.
            assert {"401", "429"} <= responses.keys(), (method, path)
            assert "Retry-After" in responses["429"]["headers"]
        if op.get("parameters") or "requestBody" in op:
            assert "422" in responses, (method, path)
        if "requestBody" in op:
            assert {"400", "413"} <= responses.keys(), (method, path)
        if any(p["name"] == "If-Match" for p in op.get("parameters", [])):
            assert "412" in responses, (method, path)
        if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])):
            assert "409" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith("4"):
                assert response["content"] == problem, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_money_is_a_decimal_string_and_enums_are_named_schemas() -> None:
    document = _committed()
    schemas = document["components"]["schemas"]

    def walk(node: Any, where: str, top: bool) -> None:
        if isinstance(node, dict):
            assert "enum" not in node or top, f"inline enum at {where}: make it a StrEnum"
            if node.get("type") == "number":
                # Amounts and rates are decimal strings; the only JSON numbers are the
                # catalog's hardware figures (vendor figures).
                figures = ("bf16_tflops", "fp16_tflops", "int8_tops", "memory_bandwidth_gbps")
                assert any(f"properties/{name}" in where for name in figures), where
            for key, value in node.items():
                walk(value, f"{where}/{key}", False)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}", False)

    walk(document["paths"], "paths", False)
    for name, schema in schemas.items():
        walk(schema, name, True)
    for name in ("OfferOut", "MatchOut", "OrderOut", "VoucherUsageItem"):
        for field, prop in schemas[name]["properties"].items():
            if field.endswith(("amount", "price_per_card_hour", "reserved", "settled")):
                branch = prop.get("anyOf", [prop])[0]
                assert branch["type"] == "string", (name, field)
                assert "pattern" in branch, (name, field)


def test_examples_match_their_schemas() -> None:
    document = _committed()
    schemas = document["components"]["schemas"]
    examples = [(name, ex) for name, s in schemas.items() for ex in s.get("examples", [])]
    for name in ("ProviderCreate", "OfferSync", "ComputeRequestCreate", "MatchOut", "OrderOut"):
        assert any(n == name for n, _ in examples), f"{name} has no example"
    for name, example in examples:
        validator = Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": document["components"]},
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, (name, errors)
