"""The shipped OpenAPI document (console/openapi.json) names exactly the API's operations, and is what
/api/v1/openapi.json serves."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from console import api

DOCUMENT = json.loads(api.OPENAPI.read_text(encoding="utf-8"))


def _routes() -> set[tuple[str, str]]:
    out = set()
    for route in api.ROUTES:
        assert isinstance(route, Route)
        path = route.path.replace(":int}", "}")
        out |= {(path, m.lower()) for m in route.methods or () if m != "HEAD"}
    return out


def test_the_document_lists_every_operation_of_the_api_and_no_other() -> None:
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
    assert documented == _routes()


def test_every_operation_has_an_id_a_summary_and_its_path_parameters() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert operation["operationId"] and operation["summary"], (path, method)
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == {part[1:-1] for part in path.split("/") if part.startswith("{")}, (path, method)


def test_the_api_serves_the_shipped_document() -> None:
    served = TestClient(Starlette(routes=api.ROUTES)).get("/openapi.json")
    assert served.status_code == 200 and served.json() == DOCUMENT


def test_the_messages_query_and_search_body_document_every_filter_field() -> None:
    from console.operations import FILTER_FIELDS

    query = {p["name"] for p in DOCUMENT["paths"]["/messages"]["get"]["parameters"] if p["in"] == "query"}
    assert query == {*FILTER_FIELDS, "after", "limit"}
    body = set(DOCUMENT["components"]["schemas"]["Search"]["properties"])
    assert body == {*FILTER_FIELDS, "after", "patient", "reason", "reveal"}
