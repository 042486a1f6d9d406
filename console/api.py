"""The console's HTTP API, /api/v1: the pages' operations as JSON, for automation.

A service account sends `Authorization: Bearer TOKEN` (`hmc-broker users add NAME --service`); a browser
session works too, with its CSRF token in X-CSRF-Token for a change. The document of these operations is
console/openapi.json, served at /api/v1/openapi.json; tests/unit/test_console_openapi.py holds the two
together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.contract import bundle
from adapters.contract.generate import ASYNCAPI_JSON
from broker.contract.dialect import schema_dir
from console import operations as ops
from console import replays
from console.accounts import Identity
from console.app import Console, api
from console.pages import attachment, download

OPENAPI = Path(__file__).parent / "openapi.json"


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(value, default=str)), status_code=status)


@api
async def flow(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    window = request.query_params.get("window", "day")
    return _json(
        ops.flow(
            console.sessions, console.settings, identity, window, console.partners, console.workers, console.counts
        )
    )


@api
async def list_messages(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    values = dict(request.query_params)
    limit = int(values.pop("limit", "50")) if values.get("limit", "50").isdigit() else 50
    with console.sessions() as session:
        return _json(ops.list_messages(session, console.settings, identity, values, limit=limit))


@api
async def search_messages(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    """The same search with a patient identifier, or with the page's identifiers revealed: a POST, so that
    neither the identifier nor the reason is in a URL or an access log."""
    values = {k: str(v) for k, v in body.items() if k in (*ops.FILTER_FIELDS, "after") and v is not None}
    with console.sessions() as session:
        return _json(
            ops.list_messages(
                session,
                console.settings,
                identity,
                values,
                patient=body.get("patient") or None,
                reason=body.get("reason"),
                revealed=body.get("reveal") is True,
            )
        )


@api
async def show_message(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        return _json(ops.show_message(session, identity, int(request.path_params["pk"])))


@api
async def reveal_message(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        doc = ops.show_message(session, identity, int(request.path_params["pk"]), str(body.get("reason") or ""))
    return _json(doc)


@api
async def failures(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        page = ops.failure_groups(session, identity, dict(request.query_params))
    return _json(
        {
            "groups": [g.as_dict() for g in page.groups],
            "by": list(page.by),
            "offset": page.offset,
            "next_offset": page.next_offset,
            "total_groups": page.total_groups,
            "total_messages": page.total_messages,
            "more_groups": page.more_groups,
            "more_messages": page.more_messages,
        }
    )


def _edited(body: dict[str, Any]) -> bytes | None:
    payload = body.get("payload")
    return str(payload).encode() if payload else None


@api
async def preview_replay(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    return _json(console.replays.preview(identity, body, _edited(body)))


@api
async def start_replay(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    return _json(console.replays.start(identity, body, _edited(body)), 202)


@api
async def resolve(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        result = ops.resolve(session, identity, body)
    return _json({"resolved": {str(k): v for k, v in result.items()}})


@api
async def jobs(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    return _json({"jobs": replays.jobs(console.sessions, identity)})


@api
async def job(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    return _json(replays.job(console.sessions, identity, int(request.path_params["job"])))


@api
async def resume_job(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    return _json(console.replays.resume(identity, int(request.path_params["job"]), body), 202)


@api
async def audit(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        return _json(ops.audit_trail(session, identity, dict(request.query_params)))


@api
async def export_messages(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        data = ops.export_messages(session, identity, body)
    return attachment(data, "messages.jsonl", "application/x-ndjson")


@api
async def export_invoice(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        return download(ops.export_invoice(session, console.settings, identity, body))


@api
async def export_prescribers(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    with console.sessions() as session:
        return download(ops.export_prescribers(session, console.settings, identity, body))


@api
async def contract(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    """The AsyncAPI document of the broker's AMQP contract (any role: it holds no data, only the contract)."""
    return Response((schema_dir() / ASYNCAPI_JSON).read_bytes(), media_type="application/json")


@api
async def contract_bundle(request: Request, console: Console, identity: Identity, body: dict[str, Any]) -> Response:
    """The versioned schema bundle a customer system downloads (as `hmc-broker contract --bundle X.zip` writes it)."""
    return attachment(bundle.zipped(), f"{bundle.bundle_name()}.zip", "application/zip")


async def openapi(request: Request) -> Response:
    return Response(OPENAPI.read_bytes(), media_type="application/json")


ROUTES = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/flow", flow, methods=["GET"]),
    Route("/messages", list_messages, methods=["GET"]),
    Route("/messages/search", search_messages, methods=["POST"]),
    Route("/messages/{pk:int}", show_message, methods=["GET"]),
    Route("/messages/{pk:int}/reveal", reveal_message, methods=["POST"]),
    Route("/failures", failures, methods=["GET"]),
    Route("/replays/preview", preview_replay, methods=["POST"]),
    Route("/replays", start_replay, methods=["POST"]),
    Route("/resolve", resolve, methods=["POST"]),
    Route("/jobs", jobs, methods=["GET"]),
    Route("/jobs/{job:int}", job, methods=["GET"]),
    Route("/jobs/{job:int}/resume", resume_job, methods=["POST"]),
    Route("/audit", audit, methods=["GET"]),
    Route("/messages/export", export_messages, methods=["POST"]),
    Route("/exports/invoice", export_invoice, methods=["POST"]),
    Route("/exports/prescribers", export_prescribers, methods=["POST"]),
    Route("/contract", contract, methods=["GET"]),
    Route("/contract/bundle", contract_bundle, methods=["GET"]),
]
