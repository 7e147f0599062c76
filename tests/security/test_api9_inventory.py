"""API9 Improper inventory management.

The committed `openapi/openapi.json` is the complete list of operations: the
app serves no route that the document lacks (beyond the few non-API pages
named here), and the document lists no operation the app does not serve.
"""

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount, Route

from tests.security.operations import document_operations

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
# Served, but not API operations: the docs pages and their assets, the document
# itself, Prometheus metrics (README: Metrics) and the web console's pages and style
# sheet (tests/console, tests/security/test_console.py). Each is tested elsewhere.
NOT_API = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/metrics"),
    ("MOUNT", "/static-docs"),
    ("GET", "/console/"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("POST", "/console/logout"),
    ("GET", "/console/market"),
    ("GET", "/console/programs/{program_id}"),
    ("GET", "/console/programs/{program_id}/export.csv"),
    ("GET", "/console/claims"),
    ("GET", "/console/claims/{claim_id}"),
    ("POST", "/console/claims/{claim_id}/review"),
    ("POST", "/console/claims/{claim_id}/disbursements"),
    ("GET", "/console/evidence/{evidence_id}"),
    ("MOUNT", "/console/static"),
}


def served(app: FastAPI) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app answers, routers' routes included."""
    out: set[tuple[str, str]] = set()
    # FastAPI keeps included routers as branches of app.routes: walk their effective routes.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            out.add(("MOUNT", str(context.path)))
        elif isinstance(route, APIRoute | Route):
            # As the document writes the path: a parameter's convertor is not in it.
            path = str(context.path_format)
            out |= {(m, path) for m in (context.methods or ()) if m != "HEAD"}
        else:
            out.add((type(route).__name__, str(context.path)))
    return out


def test_the_app_serves_nothing_the_committed_document_lacks(app: FastAPI) -> None:
    committed = set(document_operations(json.loads(COMMITTED.read_text())))
    undocumented = served(app) - committed - NOT_API
    assert not undocumented, (
        f"routes missing from openapi/openapi.json (run `make openapi`): {sorted(undocumented)}"
    )


def test_the_committed_document_lists_nothing_the_app_does_not_serve(app: FastAPI) -> None:
    committed = set(document_operations(json.loads(COMMITTED.read_text())))
    assert committed
    assert not committed - served(app), sorted(committed - served(app))


def test_only_versioned_api_paths_and_probes_are_operations(app: FastAPI) -> None:
    for _, path in document_operations(app.openapi()):
        assert path.startswith("/v1/") or path in {"/healthz", "/readyz"}, path


def test_hidden_routes_are_only_the_known_non_api_pages(app: FastAPI) -> None:
    hidden = {
        (m, str(context.path))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and not context.include_in_schema
        for m in context.methods or ()
    }
    assert ("GET", "/v1/offers") in served(app)
    assert hidden <= NOT_API, hidden - NOT_API
